/*
 * yaml: YAML documents to JSON values, the only file that includes
 * libyaml's yaml.h. Kubeconfig files and `application/apply-patch+yaml`
 * bodies are YAML; everything inside the server is JSON.
 *
 * Plain scalars become JSON null, booleans, integers or reals when they
 * read as such in YAML 1.2's core schema (null, ~, true, false, 123,
 * 1.5), strings otherwise; quoted scalars are always strings. Anchors and
 * aliases are refused (ERR_BAD_REQUEST), which also rules out alias
 * bombs. Depth is bounded. Thread-safe; no shared state.
 */
#ifndef EDGE_YAML_H
#define EDGE_YAML_H

#include <jansson.h>
#include <stddef.h>

#include "err.h"

#define YML_MAX_DEPTH 64

/* The first document of text as a new JSON reference in *out.
 * ERR_BAD_REQUEST with libyaml's message and position, ERR_NOMEM. An
 * empty document is JSON null. */
int yml_to_json(const char *text, size_t len, json_t **out, err_t *err);

#endif
