"""Budgets (spend or limit percent per window) and the alerts they raise."""
