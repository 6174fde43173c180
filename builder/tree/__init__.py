"""The strategies and what they render with: templates and changelogs,
generators, the preseed, Upstart jobs and their linter."""
