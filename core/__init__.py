"""The core every other package stands on: the store and its schema, AWS sessions, errors, the clock, settings."""
