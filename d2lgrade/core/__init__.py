"""What every layer shares: results, checks and specs, sections, the course key and data, feedback levels,
the recording format, grader versions. Imports nothing of d2lgrade but d2lgrade.inside."""
