/* fuzz_config: pullwatch.yaml and the preheat list (a ConfigMap anyone with kubectl edit rights can
 * change), both parsed from memory. A config that loads must dump to YAML that loads back to the same
 * settings (check-config's promise); a rejected one must say where. */
#include "tests/fuzz/fuzz_util.h"
#include "config/config.h"
#include "config/preheat_list.h"

static void config(const char *text, size_t size) {
        Config *c = NULL, *again = NULL;
        ErrorDetail err = {};
        char *dump = NULL, *msg;
        size_t dump_size = 0;
        FILE *f;
        int r;

        r = config_parse("fuzz.yaml", text, size, &c, &err);
        if (r < 0) {
                FUZZ_CHECK(!c);
                msg = error_detail_format(&err);
                FUZZ_CHECK(r == -ENOMEM || (msg && err.message));
                free(msg);
                error_detail_done(&err);
                return;
        }
        FUZZ_CHECK(c);
        f = open_memstream(&dump, &dump_size);
        FUZZ_CHECK(f);
        FUZZ_CHECK(config_dump(c, f) == 0);
        fclose(f);
        r = config_parse("dump.yaml", dump, dump_size, &again, &err);
        if (r < 0) {
                msg = error_detail_format(&err);
                fprintf(stderr, "dump does not load back: %s\n---\n%s---\n", msg, dump);
                abort();
        }
        FUZZ_CHECK(config_equal(c, again));
        config_free(again);
        config_free(c);
        free(dump);
}

static void preheat(const char *text, size_t size) {
        PreheatList *l = NULL;
        ErrorDetail err = {};
        char *msg;
        int r;

        r = preheat_list_parse("preheat.yaml", text, size, &l, &err);
        if (r < 0) {
                FUZZ_CHECK(!l);
                msg = error_detail_format(&err);
                FUZZ_CHECK(r == -ENOMEM || (msg && err.message));
                free(msg);
                error_detail_done(&err);
                return;
        }
        FUZZ_CHECK(l);
        for (size_t i = 0; i < l->n; i++) {
                const PreheatItem *it = &l->items[i];
                FUZZ_CHECK(it->image && it->image_raw && it->line > 0);
                FUZZ_CHECK(preheat_runtime_to_string(it->runtime));
        }
        preheat_list_free(l);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        config((const char *) data, size);
        preheat((const char *) data, size);
        return 0;
}
