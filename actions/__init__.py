"""Actions on AWS: the cleanup `apply` (its plan, its guarded calls and its audit log)."""
