"""Carbon accounts: behaviour records in, verified reductions (whole grams) out."""
