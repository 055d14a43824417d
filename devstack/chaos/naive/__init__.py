"""The naive design, for comparison only: an order front that is NOT Valerix, run by `make chaos --compare naive`.

It calls the inventory inside the request and believes what the call says: a timeout or an error is a failure
told to the customer; no idempotency key is honoured (a retry is a new order); no VerifyOrder, no reconciler.
It shares nothing with `order_functions` and is never part of the product's request path.
"""
