"""The seeded synthetic demo estate: an in-memory CodeArtifact estate and CloudTrail files about it."""
