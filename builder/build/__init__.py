"""The orchestrator: analysis (what is stale), scheduler, store, state, report,
and build tying them together."""
