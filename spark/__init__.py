"""The standalone Spark extract job (spark/extract.py): a trail in S3 to day-partitioned Parquet."""
