"""Figures over a time range: the read queries (`triptych.db.queries`) fed into the
pure statistics (`triptych.stats`), for the API, GraphQL and the Compare page.
`stats` stays numbers in, numbers out; this is where Postgres meets it."""
