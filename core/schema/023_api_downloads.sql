-- 023: a download is also a successful GetPackageVersionAsset call with a version and an asset. It returns the
-- asset's bytes (CodeArtifact's "Download package version assets": `aws codeartifact get-package-version-asset`),
-- and it is the only way to fetch a generic package, which no package manager serves: before this, a generic
-- version fetched by every build looked never downloaded, a cleanup candidate in use. CloudTrail logs every
-- CodeArtifact API call; this one's requestParameters should carry the API's key names (domain, repository,
-- format, namespace, package, packageVersion, asset: not yet seen in a real record), which the decoder and
-- NORMALIZE_SQL read besides the package managers' (domainName, repositoryName, ...).
CREATE OR REPLACE MACRO is_download(event_name, error_code, version, asset) AS
    event_name IN ('ReadFromRepository', 'GetPackageVersionAsset') AND error_code IS NULL AND version IS NOT NULL
    AND asset IS NOT NULL;

-- The rollups of the days that hold such calls were computed without them, and agree with each other, so no
-- check would notice: the next write session refreshes those days (analytics/rollups.py heal) and removes this.
INSERT INTO store_meta VALUES ('downloads_redefined', 23);
