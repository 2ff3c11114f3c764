"""Delivery: the cost e-mail, alerts, their transport (SMTP, SES, webhooks) and its secrets."""
