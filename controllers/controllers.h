/*
 * The controllers there are, one file each; ctrl_defs (controllers.c)
 * lists them for the manager and --controllers.
 */
#ifndef EDGE_CONTROLLERS_H
#define EDGE_CONTROLLERS_H

#include "../apiservice/kubeclient.h"
#include "ctrl.h"

extern const ctrl_def_t ctrl_iamrole;
extern const ctrl_def_t ctrl_workspace;
extern const ctrl_def_t ctrl_nodegroup;
extern const ctrl_def_t ctrl_cluster;
extern const ctrl_def_t ctrl_appdeploy;
extern const ctrl_def_t ctrl_application;
extern const ctrl_def_t ctrl_component;

/* A client of a member cluster from a Cluster's spec.connection
 * (borrowed): its kubeconfig's CA and credentials (base64, inline data
 * only), its kubernetesAPIEndpoint (else the kubeconfig's server), its
 * token (over the kubeconfig's), with timeout_ms for connecting and for
 * each request. 0 and *out (kc_free), ERR_BAD_REQUEST (a connection that
 * cannot be used, said in err) or ERR_NOMEM. (cluster.c) */
int ctrl_cluster_client(const json_t *conn, long timeout_ms, kc_t **out, err_t *err);

#endif
