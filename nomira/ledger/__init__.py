"""The event pipeline: the usage-only event and its wire schema, the store (raw and canonical
events, rollups, retention; SQLite or PostgreSQL), and delivery (ship, spool).

Sources produce `events.UsageEvent`; pricing prices them; everything here keeps, moves or
serves them. Nothing here reads an agent's logs or renders a report.
"""
