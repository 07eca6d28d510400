/*
 * The controllers there are, one file each; ctrl_defs (controllers.c)
 * lists them for the manager and --controllers.
 */
#ifndef EDGE_CONTROLLERS_H
#define EDGE_CONTROLLERS_H

#include "ctrl.h"

extern const ctrl_def_t ctrl_iamrole;
extern const ctrl_def_t ctrl_workspace;
extern const ctrl_def_t ctrl_nodegroup;
extern const ctrl_def_t ctrl_cluster;
extern const ctrl_def_t ctrl_component;

#endif
