/* Load tests submitted by something other than a REST call (the perf scheduler). */
#ifndef MK_API_PERF_API_H
#define MK_API_PERF_API_H

#include "api/api.h"
#include "err/err.h"

#include <stddef.h>

/* Submits a run of the stored perf config config_id (GET /api/v1/perf-configs/{id}) as the
 * system, in the config's namespace: what POST /api/v1/perf/run does with that body (targets
 * checked against PERF_ALLOWED_TARGETS, "runners" shares queued as "performance" tasks). trigger
 * (may be NULL) is kept in the result's metadata.trigger, e.g. "schedule:<scheduleId>". run_id
 * (size bytes, at least 40) gets the new run's id. MK_ENOTFOUND for an unknown config,
 * MK_EINVAL / MK_EFORBIDDEN for a config that no longer validates, MK_EUNAVAIL without a
 * coordinator or with fewer runners than the config asks. Thread-safe. */
int mk_api_perf_run_config(mk_api_t *api, const char *config_id, const char *trigger, char *run_id,
                           size_t size, mk_err_t *err);

#endif
