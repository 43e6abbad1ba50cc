/* runtime.c: what the runtime drivers share: error class names. */
#include "probes/runtime/runtime.h"


static const char *const error_class_names[_ERROR_CLASS_MAX] = {
        [ERROR_NONE] = "none",
        [ERROR_TRANSIENT] = "transient",
        [ERROR_PERMANENT] = "permanent",
        [ERROR_CANCELLED] = "cancelled",
};

const char *error_class_to_string(ErrorClass c) {
        return c >= 0 && c < _ERROR_CLASS_MAX ? error_class_names[c] : NULL;
}
