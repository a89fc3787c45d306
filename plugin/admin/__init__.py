"""The admin settings page and dashboard embedded in the platform's admin."""
