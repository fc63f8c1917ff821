/* hook.c - storage for the model's hooks (see hook.h). */
#include "hook.h"

struct hook_ops hook_installed;

void hook_install(const struct hook_ops *ops)
{
    hook_installed = *ops;
}
