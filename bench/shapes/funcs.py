"""Shape 4's python step, as a user would write it: ``function: funcs:enrich``."""

RATES = {"EUR": 1.0, "USD": 0.92, "GBP": 1.17}


def enrich(event):
    data = event.data
    data["total_eur"] = round(data["amount"] * data["quantity"] * RATES[data["currency"]], 2)
    data["vip"] = data["customer"]["tier"] == "A"
    data["skus"] = [item["sku"] for item in data["items"]]
    event.attributes["type"] = "com.example.order.enriched"
    return event
