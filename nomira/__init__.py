"""Nomira: the trusted auditor of AI token spend. Usage only, never content."""
__version__ = "0.1.0"
