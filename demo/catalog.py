"""The demo estate's static catalogue: domains, repositories, and the packages they hold.

Pure data read by `demo.estate`; nothing here does I/O or draws random numbers.
Sizes are median bytes of the package's main asset; `fame` biases download popularity.

Reads and writes nothing (static data).
"""

from __future__ import annotations

ACCOUNTS = ["111122223333", "444455556666", "777788889999"]
REGIONS = ["us-east-1", "eu-west-1"]
ORG_ID = "o-a1b2c3d4e5"

# External packages: (namespace, name, first cached version, median main-asset bytes, versions cached
# over the history, fame). npm namespaces are scopes without '@'; maven namespaces are groupIds.
NPM = [
    (None, "lodash", "4.17.15", 310e3, 6, 10),
    (None, "react", "18.2.0", 85e3, 14, 10),
    (None, "react-dom", "18.2.0", 1.2e6, 14, 9),
    (None, "express", "4.18.1", 55e3, 9, 8),
    (None, "axios", "1.4.0", 450e3, 18, 8),
    (None, "typescript", "5.0.2", 6.5e6, 22, 9),
    (None, "webpack", "5.88.0", 1.1e6, 25, 6),
    ("babel", "core", "7.22.5", 260e3, 20, 7),
    ("types", "node", "20.4.0", 410e3, 60, 9),
    ("aws-sdk", "client-s3", "3.400.0", 620e3, 55, 6),
    (None, "jest", "29.5.0", 12e3, 12, 7),
    (None, "eslint", "8.45.0", 950e3, 24, 7),
    (None, "next", "13.4.10", 21e6, 45, 5),
    (None, "vue", "3.3.4", 2.1e6, 16, 3),
    (None, "moment", "2.29.3", 720e3, 3, 4),
    (None, "chalk", "5.2.0", 16e3, 5, 6),
    (None, "uuid", "9.0.0", 32e3, 6, 6),
    (None, "esbuild", "0.18.11", 31e3, 40, 5),
    (None, "prettier", "3.0.0", 2.6e6, 14, 5),
    (None, "rxjs", "7.8.0", 1.5e6, 5, 3),
    (None, "zod", "3.21.4", 640e3, 15, 5),
    ("angular", "core", "16.1.5", 3.6e6, 30, 3),
    (None, "electron", "25.3.0", 110e3, 35, 2),
]
PYPI = [
    (None, "requests", "2.28.2", 62e3, 6, 10),
    (None, "numpy", "1.24.2", 17e6, 12, 9),
    (None, "boto3", "1.28.0", 140e3, 60, 10),
    (None, "botocore", "1.31.0", 11e6, 60, 9),
    (None, "pandas", "2.0.0", 12e6, 10, 8),
    (None, "urllib3", "1.26.15", 140e3, 10, 7),
    (None, "pyyaml", "6.0.1", 700e3, 3, 6),
    (None, "django", "4.2.0", 8e6, 14, 4),
    (None, "flask", "2.3.2", 100e3, 8, 5),
    (None, "fastapi", "0.100.0", 92e3, 30, 6),
    (None, "pydantic", "2.0.3", 400e3, 20, 8),
    (None, "sqlalchemy", "2.0.19", 3.1e6, 18, 5),
    (None, "pytest", "7.4.0", 320e3, 12, 8),
    (None, "scipy", "1.11.1", 36e6, 8, 5),
    (None, "scikit-learn", "1.3.0", 10.5e6, 7, 5),
    (None, "torch", "2.0.1", 230e6, 9, 4),
    (None, "tensorflow", "2.13.0", 270e6, 7, 3),
    (None, "jaxlib", "0.4.13", 78e6, 16, 2),
    (None, "pyarrow", "12.0.1", 39e6, 9, 5),
    (None, "matplotlib", "3.7.2", 11.5e6, 8, 4),
]
MAVEN = [
    ("com.google.guava", "guava", "32.1.1-jre", 3.1e6, 8, 9),
    ("com.fasterxml.jackson.core", "jackson-databind", "2.15.2", 1.6e6, 10, 9),
    ("org.springframework", "spring-core", "6.0.11", 1.8e6, 14, 8),
    ("org.springframework.boot", "spring-boot", "3.1.2", 1.6e6, 14, 8),
    ("org.apache.commons", "commons-lang3", "3.12.0", 600e3, 4, 7),
    ("org.slf4j", "slf4j-api", "2.0.7", 65e3, 8, 7),
    ("org.junit.jupiter", "junit-jupiter-api", "5.9.3", 210e3, 9, 7),
    ("org.apache.kafka", "kafka-clients", "3.5.1", 5.2e6, 9, 5),
    ("software.amazon.awssdk", "s3", "2.20.100", 3.4e6, 50, 6),
    ("org.apache.spark", "spark-core_2.12", "3.4.1", 14e6, 5, 4),
    ("org.apache.logging.log4j", "log4j-core", "2.20.0", 1.9e6, 5, 5),
    ("com.squareup.okhttp3", "okhttp", "4.11.0", 800e3, 5, 4),
    ("org.jetbrains.kotlin", "kotlin-stdlib", "1.9.0", 1.7e6, 12, 5),
]
EXTERNAL = {"npm": NPM, "pypi": PYPI, "maven": MAVEN}
CONNECTION = {"npm": "public:npmjs", "pypi": "public:pypi", "maven": "public:maven-central"}
STORE = {"npm": "npm-store", "pypi": "pypi-store", "maven": "maven-store"}
# pypi packages with compiled wheels (several platform wheels, an sdist often smaller than the wheel).
NATIVE = {"numpy", "pandas", "pyyaml", "sqlalchemy", "scipy", "scikit-learn", "torch", "tensorflow",
          "jaxlib", "pyarrow", "matplotlib", "botocore"}

# Internal packages: (format, namespace, name, median bytes, versions, fame, retired, dependencies).
# A dependency is (namespace, name, dependency_type); its requirement is derived from the estate.
INTERNAL = {
    "ui": ("npm", "acme", "ui", 1.4e6, 70, 9, False,
           [("acme", "design-tokens", "regular"), (None, "react", "peer"), (None, "lodash", "regular"),
            (None, "typescript", "dev"), (None, "jest", "dev")]),
    "design-tokens": ("npm", "acme", "design-tokens", 90e3, 40, 6, False, [(None, "typescript", "dev")]),
    "api-client": ("npm", "acme", "api-client", 300e3, 55, 7, False,
                   [(None, "axios", "regular"), (None, "zod", "regular"), (None, "jest", "dev")]),
    "eslint-config": ("npm", "acme", "eslint-config", 20e3, 25, 5, False, [(None, "eslint", "peer")]),
    "acme-cli": ("npm", None, "acme-cli", 2.5e6, 30, 3, False,
                 [(None, "chalk", "regular"), ("acme", "api-client", "regular")]),
    "old-widgets": ("npm", "acme", "old-widgets", 800e3, 18, 2, True, [(None, "react", "peer")]),
    "web-app": ("npm", "acme", "web-app", 65e6, 110, 4, False,
                [("acme", "ui", "regular"), ("acme", "api-client", "regular"), (None, "react-dom", "regular")]),
    "desktop-app": ("npm", "acme", "desktop-app", 190e6, 45, 2, False,
                    [("acme", "ui", "regular"), (None, "electron", "dev")]),
    "acme-common": ("pypi", None, "acme-common", 180e3, 60, 8, False,
                    [(None, "requests", "regular"), (None, "boto3", "regular"), (None, "pydantic", "regular"),
                     (None, "pytest", "dev")]),
    "acme-legacy-auth": ("pypi", None, "acme-legacy-auth", 90e3, 14, 3, True, [(None, "requests", "regular")]),
    "platform-core": ("maven", "com.acme.platform", "platform-core", 2.2e6, 65, 8, False,
                      [("com.google.guava", "guava", "compile"),
                       ("com.fasterxml.jackson.core", "jackson-databind", "compile"),
                       ("org.junit.jupiter", "junit-jupiter-api", "test")]),
    "auth-client": ("maven", "com.acme.platform", "auth-client", 450e3, 35, 6, False,
                    [("com.acme.platform", "platform-core", "compile"), ("com.squareup.okhttp3", "okhttp", "compile")]),
    "payments-service": ("maven", "com.acme.payments", "payments-service", 115e6, 120, 3, False,
                         [("com.acme.platform", "platform-core", "compile"),
                          ("org.springframework.boot", "spring-boot", "compile")]),
    "eu-billing": ("pypi", None, "acme-eu-billing", 350e3, 45, 5, False,
                   [(None, "requests", "regular"), (None, "pydantic", "regular")]),
    "eu-portal": ("npm", "acme", "eu-portal", 85e6, 60, 3, False,
                  [("acme", "gdpr-consent", "regular"), (None, "react-dom", "regular")]),
    "android-app": ("maven", "com.acme.mobile", "android-app", 95e6, 70, 3, False,
                    [("com.acme.mobile", "android-sdk", "compile")]),
    "gdpr-consent": ("npm", "acme", "gdpr-consent", 120e3, 28, 4, False, [(None, "react", "peer")]),
    "ml-models": ("pypi", None, "acme-ml-models", 210e6, 90, 4, False,
                  [(None, "torch", "regular"), (None, "numpy", "regular"), (None, "scikit-learn", "regular")]),
    "feature-store": ("pypi", None, "acme-feature-store", 1.1e6, 50, 6, False,
                      [(None, "pandas", "regular"), (None, "pyarrow", "regular"), (None, "boto3", "regular")]),
    "etl": ("pypi", None, "acme-etl", 650e3, 75, 7, False,
            [(None, "pandas", "regular"), (None, "sqlalchemy", "regular"), (None, "pytest", "dev")]),
    "spark-jobs": ("maven", "com.acme.data", "spark-jobs", 175e6, 85, 3, False,
                   [("org.apache.spark", "spark-core_2.12", "provided"),
                    ("org.apache.kafka", "kafka-clients", "compile")]),
    "android-sdk": ("maven", "com.acme.mobile", "android-sdk", 8.5e6, 55, 6, False,
                    [("org.jetbrains.kotlin", "kotlin-stdlib", "compile"), ("com.squareup.okhttp3", "okhttp", "compile")]),
    "react-native-kit": ("npm", "acme", "react-native-kit", 2.8e6, 40, 5, False,
                         [(None, "react", "peer"), ("acme", "design-tokens", "regular")]),
}

# Domains: (name, owner account index, region, days created before the history, domain weight,
# {format: number of external packages its store caches}, repositories).
# A repository: (name, description, upstreams, tags, external formats it retains through upstreams,
# internal packages published into it, internal packages it retains from an upstream).
DOMAINS = [
    ("acme", 0, "us-east-1", 420, 1.0, {"npm": 23, "pypi": 12, "maven": 13}, [
        ("shared-libs", "Internal libraries shared across teams", ["npm-store", "pypi-store", "maven-store"],
         {"team": "platform", "cost-center": "cc-1000"}, [],
         ["ui", "design-tokens", "api-client", "eslint-config", "acme-cli", "old-widgets", "acme-common",
          "acme-legacy-auth", "platform-core", "auth-client"], []),
        ("app-releases", "Release builds of customer-facing applications", ["shared-libs"],
         {"team": "apps", "cost-center": "cc-1234"}, ["npm", "maven"],
         ["web-app", "desktop-app", "payments-service"], ["ui", "api-client", "platform-core", "auth-client"]),
        ("web-frontend", "Front-end team builds", ["shared-libs"],
         {"team": "frontend", "cost-center": "cc-1234"}, ["npm"], [],
         ["ui", "design-tokens", "api-client", "eslint-config", "old-widgets"]),
        ("backend-services", "Back-end services (Python and JVM)", ["shared-libs"],
         {"team": "backend", "cost-center": "cc-2040"}, ["pypi", "maven"], [],
         ["acme-common", "acme-legacy-auth", "platform-core", "auth-client"]),
    ]),
    ("acme-eu", 0, "eu-west-1", 300, 0.35, {"npm": 12, "pypi": 8}, [
        ("eu-services", "EU data-residency services", ["npm-store", "pypi-store"],
         {"team": "eu-platform", "cost-center": "cc-3100"}, ["npm", "pypi"], ["eu-billing", "gdpr-consent", "eu-portal"], []),
    ]),
    ("data-platform", 1, "us-east-1", 500, 0.6, {"pypi": 20, "maven": 6}, [
        ("ml-models", "Trained model packages", ["pypi-store"],
         {"team": "ml", "cost-center": "cc-4200"}, ["pypi"], ["ml-models", "feature-store"], []),
        ("data-pipelines", "Batch and streaming pipelines", ["ml-models", "maven-store"],
         {"team": "data-eng", "cost-center": "cc-4100"}, ["pypi", "maven"], ["etl", "spark-jobs"],
         ["feature-store"]),
    ]),
    ("mobile", 2, "eu-west-1", 200, 0.3, {"npm": 10, "maven": 7}, [
        ("mobile-apps", "iOS and Android app builds", ["npm-store", "maven-store"],
         {"team": "mobile", "cost-center": "cc-5000"}, ["npm", "maven"], ["android-sdk", "android-app", "react-native-kit"], []),
    ]),
]
