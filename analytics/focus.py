"""caa's billed allocation as FOCUS 1.2 rows (`caa report focus`), the format FinOps tools read.

Reads: the bill and its allocation (analytics/billed.py, analytics/billing.py), the teams
(analytics/costs.py). Writes: the FOCUS file (Parquet or CSV), through DuckDB.

Rows (FinOps Open Cost and Usage Specification 1.2, FinOps-Open-Cost-and-Usage-Spec/FOCUS_Spec tag v1.2,
specification/columns/*.md; the column list tests check against is tests/fixtures/focus_1_2_columns.json):
- Usage: one per UTC day, repository (or package with by="package") and kind (storage, requests,
  transfer): the bill's usage after discounts, allocated with the model's shares (analytics/billed.py).
  BilledCost = ContractedCost = EffectiveCost = that amount; ListCost = the unblended amount before
  discounts. Storage rows sit on the domain's resource (ResourceType Domain) with x_Repository naming
  where the model puts them.
- Credit, Tax and other non-usage lines of the bill: one row per line kind, account, day and region, as
  billed (ChargeCategory Credit / Tax / Adjustment), with the x_ dimensions empty: AWS grants a credit to
  an account, not to a repository.
So BilledCost adds up, per billing account and billing period, to the bill's CodeArtifact total.
Date/Time columns are UTC (Parquet TIMESTAMP WITH TIME ZONE; CSV text YYYY-MM-DDTHH:mm:ssZ), Decimal
columns DECIMAL(38,12) (never E-notation in CSV), Tags a JSON object as text, caa's own columns x_*. In
CSV a text cell that a spreadsheet would read as a formula gets a leading apostrophe (analytics/reports.py).
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pandas as pd

from analytics import billed, billing, costs, reports
from core.aws import codeartifact_arn
from core.errors import ConfigError
from core.settings import Settings

SERVICE = {"ServiceName": "AWS CodeArtifact", "ServiceCategory": "Developer Tools",
           "ServiceSubcategory": "Other (Developer Tools)", "ProviderName": "AWS", "PublisherName": "AWS",
           "InvoiceIssuerName": "AWS"}
UNITS = {"storage": "GB-Mo", "requests": "Requests", "transfer": "GB", "other_usage": "Units"}
DESCRIPTIONS = {"storage": "CodeArtifact storage (domain, deduplicated)", "requests": "CodeArtifact requests",
                "transfer": "CodeArtifact data transfer out", "other_usage": "CodeArtifact usage"}
CATEGORIES = {"credit": "Credit", "refund": "Credit", "tax": "Tax", "fee": "Adjustment"}
DECIMALS = ["BilledCost", "ContractedCost", "EffectiveCost", "ListCost", "PricingQuantity", "ConsumedQuantity"]
TIMES = ["BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd"]
COLUMNS = ["BilledCost", "BillingAccountId", "BillingAccountName", "BillingCurrency", "BillingPeriodEnd",
           "BillingPeriodStart", "ChargeCategory", "ChargeClass", "ChargeDescription", "ChargeFrequency",
           "ChargePeriodEnd", "ChargePeriodStart", "ConsumedQuantity", "ConsumedUnit", "ContractedCost",
           "EffectiveCost", "InvoiceIssuerName", "ListCost", "PricingQuantity", "PricingUnit", "ProviderName",
           "PublisherName", "RegionId", "RegionName", "ResourceId", "ResourceName", "ResourceType",
           "ServiceCategory", "ServiceName", "ServiceSubcategory", "SubAccountId", "SubAccountName", "Tags",
           "x_Domain", "x_Repository", "x_Format", "x_Namespace", "x_Package", "x_Team", "x_Kind", "x_UsageBasis"]


def rows(con: duckdb.DuckDBPyConnection, settings: Settings, since: date | None = None, until: date | None = None,
         by: str = "repository") -> pd.DataFrame:
    """The FOCUS rows of [since, until] (default: every day of the collected bill), one per day,
    repository (or package) and kind, plus the bill's credit, tax and other lines. Columns: COLUMNS."""
    if by not in ("repository", "package"):
        raise ConfigError(f"FOCUS rows are per repository or package, not {by!r}", where="--by",
                          fix="use --by repository or --by package")
    bill = billing.coverage(con)
    if bill.lines == 0:
        raise ConfigError("no bill collected yet: a FOCUS export carries the billed cost", where="cur_line_items",
                          fix="set [cur] sources and run `caa collect cur`")
    since, until = since or bill.first_date, until or bill.last_date
    alloc, _ = billed.allocation(con, settings, since, until, spread=("discount",))
    alloc = costs._with_team(alloc, costs.repository_teams(con, settings), settings)  # noqa: SLF001
    keys = ["usage_date", "account_id", "region", "domain", "repository", "kind", "team"]
    if by == "package":
        keys[5:5] = ["format", "namespace", "package"]
    use = alloc.groupby(keys, dropna=False, as_index=False)[["usd", "gross", "qty"]].sum()
    lines = billing.lines(con, since, until)
    payer = (lines.dropna(subset=["payer_account_id"]).groupby("account_id")["payer_account_id"].first().to_dict())
    currency = lines["currency_code"].dropna().iloc[0] if "currency_code" in lines and lines[
        "currency_code"].notna().any() else "USD"
    use = use.assign(ChargeCategory="Usage", ChargeFrequency="Usage-Based")
    use["ChargeDescription"] = use["kind"].map(DESCRIPTIONS)
    use["PricingUnit"] = use["kind"].map(UNITS)
    use["ResourceType"] = [("Repository" if isinstance(r, str) and k != "storage" else "Domain") if isinstance(d, str)
                           else None for d, r, k in zip(use["domain"], use["repository"], use["kind"], strict=True)]
    use["ResourceId"] = [codeartifact_arn(a, g, d, r if t == "Repository" else None) if isinstance(d, str) else None
                         for a, g, d, r, t in
                         zip(use["account_id"], use["region"], use["domain"], use["repository"], use["ResourceType"],
                             strict=True)]
    use["ResourceName"] = [(r if t == "Repository" else d) if isinstance(t, str) else None
                           for d, r, t in zip(use["domain"], use["repository"], use["ResourceType"], strict=True)]
    use = use.rename(columns={"usd": "BilledCost", "gross": "ListCost", "qty": "PricingQuantity"})
    use["ContractedCost"] = use["EffectiveCost"] = use["BilledCost"]
    use["ConsumedQuantity"] = use["PricingQuantity"]
    use["ConsumedUnit"] = use["PricingUnit"]
    use["Tags"] = [json.dumps({"team": t}) if isinstance(t, str) and t != costs.UNASSIGNED else None
                   for t in use["team"]]
    other = lines[lines["kind"].isin(("credit", "refund", "tax", "fee"))]  # discounts are in the usage rows
    other = other.groupby(["usage_date", "account_id", "region", "kind", "description"], dropna=False,
                          as_index=False)["unblended_cost"].sum()
    other = other.assign(ChargeCategory=other["kind"].map(CATEGORIES), ChargeFrequency="One-Time",
                         ChargeDescription=other["description"].fillna(other["kind"]),
                         BilledCost=other["unblended_cost"])
    other["ContractedCost"] = other["EffectiveCost"] = other["ListCost"] = other["BilledCost"]
    df = pd.concat([use, other], ignore_index=True)
    df["usage_date"] = pd.to_datetime(df["usage_date"]).dt.date
    df["BillingAccountId"] = df["account_id"].map(payer).fillna(df["account_id"])
    df["SubAccountId"] = df["account_id"]
    df["BillingCurrency"] = currency
    df["BillingPeriodStart"] = [d.replace(day=1) for d in df["usage_date"]]
    df["BillingPeriodEnd"] = [costs.next_month_start(d) for d in df["usage_date"]]
    df["ChargePeriodStart"] = df["usage_date"]
    df["ChargePeriodEnd"] = [d + timedelta(days=1) for d in df["usage_date"]]
    df["RegionId"] = df["region"]
    df["RegionName"] = df["region"]
    df = df.assign(**SERVICE, BillingAccountName=None, ChargeClass=None, SubAccountName=None,
                   x_Domain=df["domain"], x_Repository=df["repository"], x_Format=df.get("format"),
                   x_Namespace=df.get("namespace"), x_Package=df.get("package"), x_Team=df.get("team"),
                   x_Kind=df["kind"], x_UsageBasis=["billed, allocated with caa's model shares" if k in billed.KINDS
                                                    else "billed as is" for k in df["kind"]])
    usage = df["kind"].isin(billed.KINDS)  # credits and tax cover their billing period
    df.loc[~usage, "ChargePeriodStart"] = df.loc[~usage, "BillingPeriodStart"]
    df.loc[~usage, "ChargePeriodEnd"] = df.loc[~usage, "BillingPeriodEnd"]
    return df.reindex(columns=COLUMNS).sort_values(["ChargePeriodStart", "SubAccountId", "ChargeCategory",
                                                    "x_Domain", "x_Repository", "x_Kind"], ignore_index=True)


def write(df: pd.DataFrame, out: Path, fmt: str) -> Path:
    """Write FOCUS rows with the specification's types: Parquet (typed) or CSV (ISO 8601 UTC, plain decimals)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":  # names are hostile input: a cell that would start a formula is written as text
        df = df.copy()
        for c in COLUMNS:
            if c not in DECIMALS and c not in TIMES:
                df[c] = df[c].map(reports.neutralize)
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.register("focus_rows", df)
        cast = []
        for c in COLUMNS:
            if c in DECIMALS:
                cast.append(f'CAST("{c}" AS DECIMAL(38, 12)) AS "{c}"')
            elif c in TIMES:
                ts = f"CAST(CAST(\"{c}\" AS TIMESTAMP) AT TIME ZONE 'UTC' AS TIMESTAMPTZ)"
                cast.append(f'{ts} AS "{c}"' if fmt == "parquet" else
                            f"strftime(CAST(\"{c}\" AS TIMESTAMP), '%Y-%m-%dT%H:%M:%SZ') AS \"{c}\"")
            else:
                cast.append(f'CAST("{c}" AS VARCHAR) AS "{c}"')
        select = f"SELECT {', '.join(cast)} FROM focus_rows"
        tmp = out.with_name(out.name + ".tmp")
        options = "(FORMAT parquet)" if fmt == "parquet" else "(FORMAT csv, HEADER true)"
        con.execute(f"COPY ({select}) TO '{_quote(tmp)}' {options}")
        tmp.replace(out)
    finally:
        con.close()
    return out


def _quote(path: Path) -> str:
    return str(path).replace("'", "''")
