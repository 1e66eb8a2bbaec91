// Package schedule runs KFP recurring runs: it parses triggers (cron with KFP's six fields,
// seconds first, "@every" descriptors, periodic intervals, start and end times, an optional
// time zone), decides which slots are due (catch-up of missed slots unless no_catchup,
// max_concurrency) and creates their runs through a Creator, the same path as POST /runs.
//
// It knows nothing about HTTP: the API implements Creator and uses ParseTrigger to validate
// new recurring runs.
//
// Time zones: KFP evaluates cron in UTC only. kfp-box accepts an IANA zone per recurring run
// (meta.Trigger.TimeZone, set through cron_schedule.time_zone or a "CRON_TZ=Zone " prefix of
// the cron string) and evaluates the cron in that zone; without one it is UTC, as in KFP.
// Periodic schedules do not depend on a zone.
package schedule
