/*
 * The table of controllers, in the order they start.
 */
#include "controllers.h"

const ctrl_def_t *const ctrl_defs[] = {
    &ctrl_iamrole,
    &ctrl_workspace,
    &ctrl_nodegroup,
    &ctrl_cluster,
    &ctrl_application,
    &ctrl_appdeploy,
    &ctrl_component,
    NULL,
};
