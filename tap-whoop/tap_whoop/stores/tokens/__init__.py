"""Token persistence: the record and the store's contract (`record`), one module per backend (`file`,
`sql`)."""
