#include "util/err.h"

static const char *const names[] = {
    "ERR_OK",
#define ERR_NAME(name, msg) "ERR_" #name,
    ERR_MAP(ERR_NAME)
#undef ERR_NAME
};

static const char *const messages[] = {
    "success",
#define ERR_MSG(name, msg) msg,
    ERR_MAP(ERR_MSG)
#undef ERR_MSG
};

const char *
err_name(int err)
{
    if (err > 0 || -err >= ERR__COUNT)
        return "ERR_UNKNOWN";
    return names[-err];
}

const char *
err_str(int err)
{
    if (err > 0 || -err >= ERR__COUNT)
        return "unknown error";
    return messages[-err];
}
