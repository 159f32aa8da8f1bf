"""People: accounts, roles, web sessions, API keys, quotas and usage."""
