"""The upper layer that front ends call: one `assemble.open_pipeline`, the `Pipeline`, the demo catalog, the indexer.

Every front end (page, CLI, HTTP) builds its Pipeline with `numbpie.app.assemble.open_pipeline`.
"""
