"""Activity Log records shaped like Azure's export to Event Hubs (documented field names)."""

from __future__ import annotations

import uuid
from typing import Any

SUBSCRIPTION = "00000000-0000-0000-0000-00000000c0de"


def record(
    n: int,
    *,
    category: str = "Administrative",
    result: str = "Success",
    operation: str = "MICROSOFT.STORAGE/STORAGEACCOUNTS/WRITE",
    event_data_id: bool = True,
) -> dict[str, Any]:
    resource = (
        f"/SUBSCRIPTIONS/{SUBSCRIPTION}/RESOURCEGROUPS/RG-{n % 3}/PROVIDERS/"
        f"MICROSOFT.STORAGE/STORAGEACCOUNTS/ACCT{n}"
    )
    r: dict[str, Any] = {
        "time": f"2024-05-02T10:{n % 60:02d}:07.7810000Z",
        "resourceId": resource,
        "operationName": operation,
        "category": category,
        "resultType": result,
        "resultSignature": "Succeeded.200" if result == "Success" else "Forbidden.403",
        "durationMs": str(100 + n),
        "callerIpAddress": "203.0.113.7",
        "correlationId": str(uuid.UUID(int=n + 1)),
        "identity": {
            "authorization": {
                "scope": resource,
                "action": operation,
                "evidence": {"role": "Contributor", "principalType": "User"},
            },
            "claims": {"name": "Test User", "ipaddr": "203.0.113.7"},
        },
        "level": "Information" if result == "Success" else "Error",
        "location": "global",
        "properties": {
            "statusCode": "OK" if result == "Success" else "Forbidden",
            "eventCategory": category,
            "entity": resource,
            "message": operation,
            "hierarchy": f"{SUBSCRIPTION}",
        },
    }
    if event_data_id:
        r["eventDataId"] = str(uuid.UUID(int=10_000 + n))
    else:
        r["operationId"] = str(uuid.UUID(int=20_000 + n))
    return r
