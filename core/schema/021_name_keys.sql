-- 021: package names as CodeArtifact compares them, where downloads meet the inventory.
-- CodeArtifact stores some formats' names normalized (docs: "Python package name normalization", "NuGet
-- package name, version, and asset name normalization", "Swift package name and namespace normalization"),
-- and the inventory (list_packages, list_package_versions) lists them so. A client may ask for another
-- spelling (pip for `Zope.Interface`, NuGet for `Newtonsoft.Json` with version `1.0.0-beta` of a stored
-- `1.0.0-Beta`), and CloudTrail's requestParameters may carry it. Compared as spelled, such a download matches
-- no stored version, which then looks never downloaded: a cleanup candidate although it is in use.
-- Every join of downloads to package_versions or assets compares these keys instead (both sides, so a
-- store whose two sides agree matches as before), and every table keeps the names as recorded.
-- Only what CodeArtifact itself treats as one name becomes one key: npm, Maven and the others compare as
-- spelled.

-- A package name: PyPI lowercased with each run of '-', '_' and '.' as one '-' (PEP 503); NuGet and Swift
-- lowercased.
CREATE MACRO dashes_once(name) AS
    CASE WHEN contains(name, '--') THEN regexp_replace(name, '-{2,}', '-', 'g') ELSE name END;
CREATE MACRO package_key(format, package) AS CASE
    WHEN format = 'pypi' THEN dashes_once(replace(replace(lower(package), '_', '-'), '.', '-'))
    WHEN format IN ('nuget', 'swift') THEN lower(package)
    ELSE package END;

-- A namespace: Swift's lowercased (the only format with a namespace that CodeArtifact normalizes).
CREATE MACRO namespace_key(format, namespace) AS CASE WHEN format = 'swift' THEN lower(namespace) ELSE namespace END;

-- A version: NuGet's lowercased (its clients ask for `1.0.0-beta` in lowercase) without SemVer build metadata
-- (`1.0.7+r3456` is stored as `1.0.7`).
CREATE MACRO version_key(format, version) AS
    CASE WHEN format = 'nuget' THEN lower(split_part(version, '+', 1)) ELSE version END;

-- An asset name: NuGet's lowercased (CodeArtifact builds it from the normalized name and version; a client
-- fetches `<id>.<version>.nupkg` in lowercase).
CREATE MACRO asset_key(format, asset) AS CASE WHEN format = 'nuget' THEN lower(asset) ELSE asset END;
