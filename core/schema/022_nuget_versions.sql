-- 022: NuGet versions as CodeArtifact stores them. Its docs ("NuGet package name, version, and asset name
-- normalization") follow NuGet's normalized version numbers: besides 021's lowercase without build metadata,
-- leading zeros are removed from each number (`1.01.1` is `1.1.1`, `1.00` is `1.0`, `1.00.0.1` is `1.0.0.1`)
-- and a fourth number that is zero is left out (`1.0.0.0` is `1.0.0`, `1.0.01.0` is `1.0.1`). A download
-- recorded as a client spelled such a version (.NET's four-part `1.0.0.0`, a hand-written `1.01.0`) then meets
-- the stored version, instead of leaving it looking never downloaded. The prerelease label after the first '-'
-- is kept as it is (lowercased).

-- A release part (`1.01.0.0`: the version before its first '-') normalized: each number without its leading
-- zeros, then without a fourth number that is zero. Two regular expressions: 0.30 us a NuGet version against
-- 0.05 before 022 (a list of the numbers, each trimmed, took 1.6).
CREATE MACRO nuget_release(release) AS regexp_replace(
    regexp_replace(release, '(^|\.)0+([0-9])', '\1\2', 'g'), '^([^.]*\.[^.]*\.[^.]*)\.0$', '\1');

-- A version (lowercased, without build metadata) normalized: its release part, then its label as it is.
CREATE MACRO nuget_version(v) AS
    nuget_release(split_part(v, '-', 1)) || substr(v, length(split_part(v, '-', 1)) + 1);

CREATE OR REPLACE MACRO version_key(format, version) AS
    CASE WHEN format = 'nuget' THEN nuget_version(lower(split_part(version, '+', 1))) ELSE version END;
