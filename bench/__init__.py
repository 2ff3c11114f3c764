"""`make bench`: the CloudTrail ingest, re-run, increment, mixed-trail, S3 and inventory figures (bench/run.py)."""
