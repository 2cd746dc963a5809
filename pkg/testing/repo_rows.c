/* Row collector for repository backend tests (see repo_rows.h). */
#include "testing/repo_rows.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dup_or_null(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

int mk_testing_rows_collect(void *ud, const mk_repo_mock_t *m)
{
    mk_testing_rows_t *c = ud;
    if (c->n >= MK_TESTING_ROWS_MAX)
        return -100;
    mk_testing_row_t *r = &c->rows[c->n++];
    *r = (mk_testing_row_t){.id = dup_or_null(m->id),
                            .ns = dup_or_null(m->namespace_),
                            .chain = dup_or_null(m->chain_id),
                            .json = dup_or_null(m->json),
                            .created_at = m->created_at,
                            .updated_at = m->updated_at,
                            .closed_at = m->closed_at,
                            .uses = m->uses,
                            .last_use = m->last_use,
                            .seq = m->seq};
    if (c->stop_after != 0 && c->n >= c->stop_after)
        return 7;
    return 0;
}

void mk_testing_rows_reset(mk_testing_rows_t *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->rows[i].id);
        free(c->rows[i].ns);
        free(c->rows[i].chain);
        free(c->rows[i].json);
    }
    memset(c, 0, sizeof *c);
}

const mk_testing_row_t *mk_testing_rows_find(const mk_testing_rows_t *c, const char *id)
{
    for (size_t i = 0; i < c->n; i++) {
        if (strcmp(c->rows[i].id, id) == 0)
            return &c->rows[i];
    }
    return NULL;
}

int mk_testing_names_collect(void *ud, const char *name, int64_t created_at)
{
    mk_testing_names_t *ns = ud;
    if (ns->n >= 8)
        return -100;
    snprintf(ns->name[ns->n], sizeof ns->name[0], "%s", name);
    ns->created[ns->n++] = created_at;
    return 0;
}
