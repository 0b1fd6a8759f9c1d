package multiplex

// MaxFields exposes maxFields to the external tests.
const MaxFields = maxFields
