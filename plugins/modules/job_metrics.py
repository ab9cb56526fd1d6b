#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: job_metrics
short_description: Write a backup, restore drill or preflight run's metrics for node_exporter's textfile collector
version_added: 0.2.0
description:
  - Writes one Prometheus text-format file per job into O(directory) - C(hunter_ops_backup_<host>_<database>.prom),
    C(hunter_ops_restore_drill_<host>_<database>.prom) or C(hunter_ops_preflight_<environment>.prom) - replaced
    atomically (a temporary file in the same directory, then a rename), mode C(0644). docs/METRICS.md lists every
    metric and example alerting rules.
  - Series of the last successful run (C(*_last_success_*), C(hunter_ops_preflight_last_go_timestamp_seconds)) are
    kept from the previous file when this run failed; the backup file also keeps the series of other backup labels.
  - A directory that cannot be written is a warning (C(written=false)), never a failure of the job it describes.
    Bad arguments fail with a message naming the parameter.
  - Not a check (it records no checklist item); C(changed=true) when it wrote the file. Check mode writes nothing.
author:
  - hunter.ops contributors (@hunter-ops)
options:
  job:
    description:
      - Which job the metrics describe.
    type: str
    required: true
    choices: [backup, restore_drill, preflight]
  directory:
    description:
      - The textfile collector's directory (created when missing). V(auto) is the first that exists of
        C(/var/lib/prometheus/node-exporter) (Debian's prometheus-node-exporter),
        C(/var/lib/node_exporter/textfile_collector) and C(/var/lib/node_exporter); when none exists nothing is
        written. An empty string turns metrics off.
    type: str
    default: auto
  labels:
    description:
      - The run's identity as labels of every series - C(host) and C(database) (and C(label), the backup label, for
        O(job=backup)), or C(environment) for O(job=preflight).
    type: dict
    required: true
  data:
    description:
      - What the run produced. O(job=backup) - C(checks) (its BACKUP-* items) and C(backup) (the fact
        C(hunter_ops_backup)). O(job=restore_drill) - C(checks) (its RESTORE-* items) and C(drill) (the fact
        C(hunter_ops_restore_drill)). O(job=preflight) - the result of M(hunter.ops.preflight_report) (C(verdict),
        C(counts), C(blocking), C(items), C(written)).
    type: dict
    required: true
'''

EXAMPLES = r'''
- name: Metrics of the backup this run took
  hunter.ops.job_metrics:
    job: backup
    directory: /var/lib/prometheus/node-exporter
    labels: {host: "{{ inventory_hostname }}", database: hunter, label: daily}
    data:
      checks: "{{ ansible_facts.hunter_ops_checks }}"
      backup: "{{ hunter_ops_backup }}"
'''

RETURN = r'''
path:
  description: The metrics file (written, or that would be in check mode); null when metrics are off.
  returned: always
  type: str
written:
  description: Whether the file was written.
  returned: always
  type: bool
series:
  description: Number of samples in the file.
  returned: always
  type: int
success:
  description: Whether the run counted as a success (the backup verified, the drill passed, the preflight said GO).
  returned: always
  type: bool
'''

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hunter.ops.plugins.module_utils import metrics

REQUIRED_LABELS = {"backup": ("host", "database", "label"), "restore_drill": ("host", "database"),
                   "preflight": ("environment",)}


def main():
    module = AnsibleModule(argument_spec=dict(
        job=dict(type="str", required=True, choices=list(metrics.JOBS)),
        directory=dict(type="str", default="auto"),
        labels=dict(type="dict", required=True),
        data=dict(type="dict", required=True),
    ), supports_check_mode=True)
    p = module.params
    labels = dict((str(k), "" if v is None else str(v)) for k, v in p["labels"].items())
    missing = [k for k in REQUIRED_LABELS[p["job"]] if not labels.get(k)]
    if missing:
        module.fail_json(msg="labels: %s needs %s" % (p["job"], ", ".join(missing)))
    bad = [k for k in labels if not metrics._NAME_RE.match(k) or ":" in k or k.startswith("__")]
    if bad:
        module.fail_json(msg="labels: invalid label names %s" % ", ".join(sorted(bad)))
    directory, why = metrics.resolve_directory(p["directory"])
    result = dict(changed=False, path=None, written=False, series=0, success=False)
    if directory is None:
        module.exit_json(msg=why, **result)
    if not os.path.isabs(directory):
        module.fail_json(msg="directory: %r must be an absolute path (or auto, or empty for off)" % directory)
    path = os.path.join(directory, metrics.file_name(p["job"], labels))
    families, ok = metrics.build(p["job"], labels, p["data"], metrics.read_previous(path))
    text = metrics.render(families)
    result.update(path=path, series=sum(len(f.samples) for f in families), success=ok)
    if module.check_mode:
        module.exit_json(msg="check mode: would write %d series to %s" % (result["series"], path), **result)
    try:
        if not os.path.isdir(directory):
            os.makedirs(directory, 0o755)
        metrics.write_atomic(path, text)
    except (IOError, OSError) as err:
        message = "metrics not written to %s: %s" % (path, err.strerror or err)
        module.warn(message)
        module.exit_json(msg=message, **result)
    result.update(changed=True, written=True)
    module.exit_json(msg="%d series written to %s" % (result["series"], path), **result)


if __name__ == "__main__":
    main()
