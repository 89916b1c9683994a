"""The market: listings, quotes, two-phase orders, payments, the money ledger and settlements."""
