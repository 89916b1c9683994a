"""Carbon accounts: behaviour data in, verified reductions, green levels and benefits out."""
