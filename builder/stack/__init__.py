"""The stack definition, loaded and checked: profiles, recipes with their typed
strategy sections, germinate seeds, the stack of one run; the JSON schemas."""
