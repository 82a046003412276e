// Package routing holds postroom's workload distribution: queues, business calendars,
// classification rules, prioritisation schemas ("priority over time"), SLA policies,
// agents' skills, languages, capacity and status, and the assignment engine with its
// decision trace.
//
// The rules here are pure: they take the configuration and the facts (a message, an
// item's age, the agents) and answer; persistence lives in internal/store, the work
// item's lifecycle in internal/workitem. Web pages, the API and the CLI all call this
// package, so a rule holds the same everywhere.
package routing
