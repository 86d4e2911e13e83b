"""Governance: the problem the project set out to solve (``[problem]`` → the checks, policy and alert rules that
gate a model), where the project stands against it (``mlo.status()``) and its maturity level measured from its
records (``mlo.maturity()``)."""
