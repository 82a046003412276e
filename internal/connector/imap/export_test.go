package imap

// MaxBatchBytes is maxBatchBytes for the external tests.
const MaxBatchBytes = maxBatchBytes
