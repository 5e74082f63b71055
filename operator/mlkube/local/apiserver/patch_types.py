"""Patch and list metadata of the built-in kinds the API server stores, as data.

Owns: for each upstream Go type reachable from the served built-in kinds, the fields that
carry `patchStrategy`/`patchMergeKey` struct tags (strategic merge patch) or
`+listType`/`+listMapKey`/`+mapType` markers (server-side apply), plus the type of each
nested struct that has such fields (`map[<type>]` for a map whose values are such structs,
e.g. a CRD schema's `properties`). Fields not listed merge as plain maps and replace as
atomic lists. Must not: hold behaviour; `patch_strategic` and `apply_fields` interpret it.

Source: the Kubernetes v1.32 OpenAPI definitions (`x-kubernetes-patch-strategy`,
`x-kubernetes-patch-merge-key`, `x-kubernetes-list-type`, `x-kubernetes-list-map-keys`,
`x-kubernetes-map-type`), which are generated from the struct tags in `k8s.io/api`.
tests/unit/apiserver/test_patch_types.py regenerates this table from the copy of those
definitions shipped in `kubernetes-validate` and fails when the two differ.
"""

from __future__ import annotations

ATOMIC = "$atomic"  # a type marked `+structType=atomic` / `x-kubernetes-map-type: atomic`

ROOT_TYPES: dict[tuple[str, str], str] = {
    ("v1", "ConfigMap"): "io.k8s.api.core.v1.ConfigMap",
    ("v1", "Endpoints"): "io.k8s.api.core.v1.Endpoints",
    ("v1", "Event"): "io.k8s.api.core.v1.Event",
    ("v1", "Namespace"): "io.k8s.api.core.v1.Namespace",
    ("v1", "Pod"): "io.k8s.api.core.v1.Pod",
    ("v1", "Secret"): "io.k8s.api.core.v1.Secret",
    ("v1", "Service"): "io.k8s.api.core.v1.Service",
    ("v1", "ServiceAccount"): "io.k8s.api.core.v1.ServiceAccount",
    (
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
    ): "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition",
    ("apps/v1", "Deployment"): "io.k8s.api.apps.v1.Deployment",
    ("apps/v1", "ReplicaSet"): "io.k8s.api.apps.v1.ReplicaSet",
    ("batch/v1", "Job"): "io.k8s.api.batch.v1.Job",
    ("coordination.k8s.io/v1", "Lease"): "io.k8s.api.coordination.v1.Lease",
    ("events.k8s.io/v1", "Event"): "io.k8s.api.events.v1.Event",
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): "io.k8s.api.rbac.v1.ClusterRole",
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): "io.k8s.api.rbac.v1.ClusterRoleBinding",
    ("rbac.authorization.k8s.io/v1", "Role"): "io.k8s.api.rbac.v1.Role",
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): "io.k8s.api.rbac.v1.RoleBinding",
}

TYPES: dict[str, dict] = {
    "io.k8s.api.apps.v1.Deployment": {
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        "spec": {"type": "io.k8s.api.apps.v1.DeploymentSpec"},
        "status": {"type": "io.k8s.api.apps.v1.DeploymentStatus"},
    },
    "io.k8s.api.apps.v1.DeploymentSpec": {
        "selector": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"},
        "strategy": {"patchStrategy": "retainKeys"},
        "template": {"type": "io.k8s.api.core.v1.PodTemplateSpec"},
    },
    "io.k8s.api.apps.v1.DeploymentStatus": {
        "conditions": {"listMapKeys": ["type"], "listType": "map", "patchMergeKey": "type", "patchStrategy": "merge"},
    },
    "io.k8s.api.apps.v1.ReplicaSet": {
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        "spec": {"type": "io.k8s.api.apps.v1.ReplicaSetSpec"},
        "status": {"type": "io.k8s.api.apps.v1.ReplicaSetStatus"},
    },
    "io.k8s.api.apps.v1.ReplicaSetSpec": {
        "selector": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"},
        "template": {"type": "io.k8s.api.core.v1.PodTemplateSpec"},
    },
    "io.k8s.api.apps.v1.ReplicaSetStatus": {
        "conditions": {"listMapKeys": ["type"], "listType": "map", "patchMergeKey": "type", "patchStrategy": "merge"},
    },
    "io.k8s.api.batch.v1.Job": {
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        "spec": {"type": "io.k8s.api.batch.v1.JobSpec"},
        "status": {"type": "io.k8s.api.batch.v1.JobStatus"},
    },
    "io.k8s.api.batch.v1.JobSpec": {
        "podFailurePolicy": {"type": "io.k8s.api.batch.v1.PodFailurePolicy"},
        "selector": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"},
        "template": {"type": "io.k8s.api.core.v1.PodTemplateSpec"},
    },
    "io.k8s.api.batch.v1.JobStatus": {
        "conditions": {"patchMergeKey": "type", "patchStrategy": "merge"},
        "uncountedTerminatedPods": {"type": "io.k8s.api.batch.v1.UncountedTerminatedPods"},
    },
    "io.k8s.api.batch.v1.PodFailurePolicy": {
        "rules": {"type": "io.k8s.api.batch.v1.PodFailurePolicyRule"},
    },
    "io.k8s.api.batch.v1.PodFailurePolicyOnExitCodesRequirement": {
        "values": {"listType": "set"},
    },
    "io.k8s.api.batch.v1.PodFailurePolicyRule": {
        "onExitCodes": {"type": "io.k8s.api.batch.v1.PodFailurePolicyOnExitCodesRequirement"},
    },
    "io.k8s.api.batch.v1.UncountedTerminatedPods": {
        "failed": {"listType": "set"},
        "succeeded": {"listType": "set"},
    },
    "io.k8s.api.coordination.v1.Lease": {
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
    },
    "io.k8s.api.core.v1.Affinity": {
        "nodeAffinity": {"type": "io.k8s.api.core.v1.NodeAffinity"},
        "podAffinity": {"type": "io.k8s.api.core.v1.PodAffinity"},
        "podAntiAffinity": {"type": "io.k8s.api.core.v1.PodAntiAffinity"},
    },
    "io.k8s.api.core.v1.CSIVolumeSource": {
        "nodePublishSecretRef": {"type": "io.k8s.api.core.v1.LocalObjectReference"},
    },
    "io.k8s.api.core.v1.CephFSVolumeSource": {
        "secretRef": {"type": "io.k8s.api.core.v1.LocalObjectReference"},
    },
    "io.k8s.api.core.v1.CinderVolumeSource": {
        "secretRef": {"type": "io.k8s.api.core.v1.LocalObjectReference"},
    },
    "io.k8s.api.core.v1.ClusterTrustBundleProjection": {
        "labelSelector": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"},
    },
    "io.k8s.api.core.v1.ConfigMap": {
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
    },
    "io.k8s.api.core.v1.ConfigMapKeySelector": {
        ATOMIC: True,
    },
    "io.k8s.api.core.v1.Container": {
        "env": {
            "listMapKeys": ["name"],
            "listType": "map",
            "patchMergeKey": "name",
            "patchStrategy": "merge",
            "type": "io.k8s.api.core.v1.EnvVar",
        },
        "ports": {
            "listMapKeys": ["containerPort", "protocol"],
            "listType": "map",
            "patchMergeKey": "containerPort",
            "patchStrategy": "merge",
        },
        "resources": {"type": "io.k8s.api.core.v1.ResourceRequirements"},
        "volumeDevices": {
            "listMapKeys": ["devicePath"],
            "listType": "map",
            "patchMergeKey": "devicePath",
            "patchStrategy": "merge",
        },
        "volumeMounts": {"listMapKeys": ["mountPath"], "listType": "map", "patchMergeKey": "mountPath", "patchStrategy": "merge"},
    },
    "io.k8s.api.core.v1.ContainerStatus": {
        "allocatedResourcesStatus": {
            "listMapKeys": ["name"],
            "listType": "map",
            "patchMergeKey": "name",
            "patchStrategy": "merge",
            "type": "io.k8s.api.core.v1.ResourceStatus",
        },
        "resources": {"type": "io.k8s.api.core.v1.ResourceRequirements"},
        "volumeMounts": {"listMapKeys": ["mountPath"], "listType": "map", "patchMergeKey": "mountPath", "patchStrategy": "merge"},
    },
    "io.k8s.api.core.v1.DownwardAPIProjection": {
        "items": {"type": "io.k8s.api.core.v1.DownwardAPIVolumeFile"},
    },
    "io.k8s.api.core.v1.DownwardAPIVolumeFile": {
        "fieldRef": {"type": "io.k8s.api.core.v1.ObjectFieldSelector"},
        "resourceFieldRef": {"type": "io.k8s.api.core.v1.ResourceFieldSelector"},
    },
    "io.k8s.api.core.v1.DownwardAPIVolumeSource": {
        "items": {"type": "io.k8s.api.core.v1.DownwardAPIVolumeFile"},
    },
    "io.k8s.api.core.v1.EndpointAddress": {
        ATOMIC: True,
        "targetRef": {"type": "io.k8s.api.core.v1.ObjectReference"},
    },
    "io.k8s.api.core.v1.EndpointPort": {
        ATOMIC: True,
    },
    "io.k8s.api.core.v1.EndpointSubset": {
        "addresses": {"type": "io.k8s.api.core.v1.EndpointAddress"},
        "notReadyAddresses": {"type": "io.k8s.api.core.v1.EndpointAddress"},
        "ports": {"type": "io.k8s.api.core.v1.EndpointPort"},
    },
    "io.k8s.api.core.v1.Endpoints": {
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        "subsets": {"type": "io.k8s.api.core.v1.EndpointSubset"},
    },
    "io.k8s.api.core.v1.EnvVar": {
        "valueFrom": {"type": "io.k8s.api.core.v1.EnvVarSource"},
    },
    "io.k8s.api.core.v1.EnvVarSource": {
        "configMapKeyRef": {"type": "io.k8s.api.core.v1.ConfigMapKeySelector"},
        "fieldRef": {"type": "io.k8s.api.core.v1.ObjectFieldSelector"},
        "resourceFieldRef": {"type": "io.k8s.api.core.v1.ResourceFieldSelector"},
        "secretKeyRef": {"type": "io.k8s.api.core.v1.SecretKeySelector"},
    },
    "io.k8s.api.core.v1.EphemeralContainer": {
        "env": {
            "listMapKeys": ["name"],
            "listType": "map",
            "patchMergeKey": "name",
            "patchStrategy": "merge",
            "type": "io.k8s.api.core.v1.EnvVar",
        },
        "ports": {
            "listMapKeys": ["containerPort", "protocol"],
            "listType": "map",
            "patchMergeKey": "containerPort",
            "patchStrategy": "merge",
        },
        "resources": {"type": "io.k8s.api.core.v1.ResourceRequirements"},
        "volumeDevices": {
            "listMapKeys": ["devicePath"],
            "listType": "map",
            "patchMergeKey": "devicePath",
            "patchStrategy": "merge",
        },
        "volumeMounts": {"listMapKeys": ["mountPath"], "listType": "map", "patchMergeKey": "mountPath", "patchStrategy": "merge"},
    },
    "io.k8s.api.core.v1.EphemeralVolumeSource": {
        "volumeClaimTemplate": {"type": "io.k8s.api.core.v1.PersistentVolumeClaimTemplate"},
    },
    "io.k8s.api.core.v1.Event": {
        "involvedObject": {"type": "io.k8s.api.core.v1.ObjectReference"},
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        "related": {"type": "io.k8s.api.core.v1.ObjectReference"},
    },
    "io.k8s.api.core.v1.FlexVolumeSource": {
        "secretRef": {"type": "io.k8s.api.core.v1.LocalObjectReference"},
    },
    "io.k8s.api.core.v1.ISCSIVolumeSource": {
        "secretRef": {"type": "io.k8s.api.core.v1.LocalObjectReference"},
    },
    "io.k8s.api.core.v1.LocalObjectReference": {
        ATOMIC: True,
    },
    "io.k8s.api.core.v1.Namespace": {
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        "status": {"type": "io.k8s.api.core.v1.NamespaceStatus"},
    },
    "io.k8s.api.core.v1.NamespaceStatus": {
        "conditions": {"listMapKeys": ["type"], "listType": "map", "patchMergeKey": "type", "patchStrategy": "merge"},
    },
    "io.k8s.api.core.v1.NodeAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": {"type": "io.k8s.api.core.v1.PreferredSchedulingTerm"},
        "requiredDuringSchedulingIgnoredDuringExecution": {"type": "io.k8s.api.core.v1.NodeSelector"},
    },
    "io.k8s.api.core.v1.NodeSelector": {
        ATOMIC: True,
        "nodeSelectorTerms": {"type": "io.k8s.api.core.v1.NodeSelectorTerm"},
    },
    "io.k8s.api.core.v1.NodeSelectorTerm": {
        ATOMIC: True,
    },
    "io.k8s.api.core.v1.ObjectFieldSelector": {
        ATOMIC: True,
    },
    "io.k8s.api.core.v1.ObjectReference": {
        ATOMIC: True,
    },
    "io.k8s.api.core.v1.PersistentVolumeClaimSpec": {
        "dataSource": {"type": "io.k8s.api.core.v1.TypedLocalObjectReference"},
        "selector": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"},
    },
    "io.k8s.api.core.v1.PersistentVolumeClaimTemplate": {
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        "spec": {"type": "io.k8s.api.core.v1.PersistentVolumeClaimSpec"},
    },
    "io.k8s.api.core.v1.Pod": {
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        "spec": {"type": "io.k8s.api.core.v1.PodSpec"},
        "status": {"type": "io.k8s.api.core.v1.PodStatus"},
    },
    "io.k8s.api.core.v1.PodAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": {"type": "io.k8s.api.core.v1.WeightedPodAffinityTerm"},
        "requiredDuringSchedulingIgnoredDuringExecution": {"type": "io.k8s.api.core.v1.PodAffinityTerm"},
    },
    "io.k8s.api.core.v1.PodAffinityTerm": {
        "labelSelector": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"},
        "namespaceSelector": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"},
    },
    "io.k8s.api.core.v1.PodAntiAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": {"type": "io.k8s.api.core.v1.WeightedPodAffinityTerm"},
        "requiredDuringSchedulingIgnoredDuringExecution": {"type": "io.k8s.api.core.v1.PodAffinityTerm"},
    },
    "io.k8s.api.core.v1.PodSpec": {
        "affinity": {"type": "io.k8s.api.core.v1.Affinity"},
        "containers": {
            "listMapKeys": ["name"],
            "listType": "map",
            "patchMergeKey": "name",
            "patchStrategy": "merge",
            "type": "io.k8s.api.core.v1.Container",
        },
        "ephemeralContainers": {
            "listMapKeys": ["name"],
            "listType": "map",
            "patchMergeKey": "name",
            "patchStrategy": "merge",
            "type": "io.k8s.api.core.v1.EphemeralContainer",
        },
        "hostAliases": {"listMapKeys": ["ip"], "listType": "map", "patchMergeKey": "ip", "patchStrategy": "merge"},
        "imagePullSecrets": {
            "listMapKeys": ["name"],
            "listType": "map",
            "patchMergeKey": "name",
            "patchStrategy": "merge",
            "type": "io.k8s.api.core.v1.LocalObjectReference",
        },
        "initContainers": {
            "listMapKeys": ["name"],
            "listType": "map",
            "patchMergeKey": "name",
            "patchStrategy": "merge",
            "type": "io.k8s.api.core.v1.Container",
        },
        "nodeSelector": {"mapType": "atomic"},
        "resourceClaims": {
            "listMapKeys": ["name"],
            "listType": "map",
            "patchMergeKey": "name",
            "patchStrategy": "merge,retainKeys",
        },
        "resources": {"type": "io.k8s.api.core.v1.ResourceRequirements"},
        "schedulingGates": {"listMapKeys": ["name"], "listType": "map", "patchMergeKey": "name", "patchStrategy": "merge"},
        "topologySpreadConstraints": {
            "listMapKeys": ["topologyKey", "whenUnsatisfiable"],
            "listType": "map",
            "patchMergeKey": "topologyKey",
            "patchStrategy": "merge",
            "type": "io.k8s.api.core.v1.TopologySpreadConstraint",
        },
        "volumes": {
            "listMapKeys": ["name"],
            "listType": "map",
            "patchMergeKey": "name",
            "patchStrategy": "merge,retainKeys",
            "type": "io.k8s.api.core.v1.Volume",
        },
    },
    "io.k8s.api.core.v1.PodStatus": {
        "conditions": {"listMapKeys": ["type"], "listType": "map", "patchMergeKey": "type", "patchStrategy": "merge"},
        "containerStatuses": {"type": "io.k8s.api.core.v1.ContainerStatus"},
        "ephemeralContainerStatuses": {"type": "io.k8s.api.core.v1.ContainerStatus"},
        "hostIPs": {"patchMergeKey": "ip", "patchStrategy": "merge"},
        "initContainerStatuses": {"type": "io.k8s.api.core.v1.ContainerStatus"},
        "podIPs": {"listMapKeys": ["ip"], "listType": "map", "patchMergeKey": "ip", "patchStrategy": "merge"},
        "resourceClaimStatuses": {
            "listMapKeys": ["name"],
            "listType": "map",
            "patchMergeKey": "name",
            "patchStrategy": "merge,retainKeys",
        },
    },
    "io.k8s.api.core.v1.PodTemplateSpec": {
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        "spec": {"type": "io.k8s.api.core.v1.PodSpec"},
    },
    "io.k8s.api.core.v1.PreferredSchedulingTerm": {
        "preference": {"type": "io.k8s.api.core.v1.NodeSelectorTerm"},
    },
    "io.k8s.api.core.v1.ProjectedVolumeSource": {
        "sources": {"type": "io.k8s.api.core.v1.VolumeProjection"},
    },
    "io.k8s.api.core.v1.RBDVolumeSource": {
        "secretRef": {"type": "io.k8s.api.core.v1.LocalObjectReference"},
    },
    "io.k8s.api.core.v1.ResourceFieldSelector": {
        ATOMIC: True,
    },
    "io.k8s.api.core.v1.ResourceRequirements": {
        "claims": {"listMapKeys": ["name"], "listType": "map"},
    },
    "io.k8s.api.core.v1.ResourceStatus": {
        "resources": {"listMapKeys": ["resourceID"], "listType": "map"},
    },
    "io.k8s.api.core.v1.ScaleIOVolumeSource": {
        "secretRef": {"type": "io.k8s.api.core.v1.LocalObjectReference"},
    },
    "io.k8s.api.core.v1.Secret": {
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
    },
    "io.k8s.api.core.v1.SecretKeySelector": {
        ATOMIC: True,
    },
    "io.k8s.api.core.v1.Service": {
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        "spec": {"type": "io.k8s.api.core.v1.ServiceSpec"},
        "status": {"type": "io.k8s.api.core.v1.ServiceStatus"},
    },
    "io.k8s.api.core.v1.ServiceAccount": {
        "imagePullSecrets": {"type": "io.k8s.api.core.v1.LocalObjectReference"},
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        "secrets": {
            "listMapKeys": ["name"],
            "listType": "map",
            "patchMergeKey": "name",
            "patchStrategy": "merge",
            "type": "io.k8s.api.core.v1.ObjectReference",
        },
    },
    "io.k8s.api.core.v1.ServiceSpec": {
        "ports": {"listMapKeys": ["port", "protocol"], "listType": "map", "patchMergeKey": "port", "patchStrategy": "merge"},
        "selector": {"mapType": "atomic"},
    },
    "io.k8s.api.core.v1.ServiceStatus": {
        "conditions": {"listMapKeys": ["type"], "listType": "map", "patchMergeKey": "type", "patchStrategy": "merge"},
    },
    "io.k8s.api.core.v1.StorageOSVolumeSource": {
        "secretRef": {"type": "io.k8s.api.core.v1.LocalObjectReference"},
    },
    "io.k8s.api.core.v1.TopologySpreadConstraint": {
        "labelSelector": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"},
    },
    "io.k8s.api.core.v1.TypedLocalObjectReference": {
        ATOMIC: True,
    },
    "io.k8s.api.core.v1.Volume": {
        "cephfs": {"type": "io.k8s.api.core.v1.CephFSVolumeSource"},
        "cinder": {"type": "io.k8s.api.core.v1.CinderVolumeSource"},
        "csi": {"type": "io.k8s.api.core.v1.CSIVolumeSource"},
        "downwardAPI": {"type": "io.k8s.api.core.v1.DownwardAPIVolumeSource"},
        "ephemeral": {"type": "io.k8s.api.core.v1.EphemeralVolumeSource"},
        "flexVolume": {"type": "io.k8s.api.core.v1.FlexVolumeSource"},
        "iscsi": {"type": "io.k8s.api.core.v1.ISCSIVolumeSource"},
        "projected": {"type": "io.k8s.api.core.v1.ProjectedVolumeSource"},
        "rbd": {"type": "io.k8s.api.core.v1.RBDVolumeSource"},
        "scaleIO": {"type": "io.k8s.api.core.v1.ScaleIOVolumeSource"},
        "storageos": {"type": "io.k8s.api.core.v1.StorageOSVolumeSource"},
    },
    "io.k8s.api.core.v1.VolumeProjection": {
        "clusterTrustBundle": {"type": "io.k8s.api.core.v1.ClusterTrustBundleProjection"},
        "downwardAPI": {"type": "io.k8s.api.core.v1.DownwardAPIProjection"},
    },
    "io.k8s.api.core.v1.WeightedPodAffinityTerm": {
        "podAffinityTerm": {"type": "io.k8s.api.core.v1.PodAffinityTerm"},
    },
    "io.k8s.api.events.v1.Event": {
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        "regarding": {"type": "io.k8s.api.core.v1.ObjectReference"},
        "related": {"type": "io.k8s.api.core.v1.ObjectReference"},
    },
    "io.k8s.api.rbac.v1.AggregationRule": {
        "clusterRoleSelectors": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"},
    },
    "io.k8s.api.rbac.v1.ClusterRole": {
        "aggregationRule": {"type": "io.k8s.api.rbac.v1.AggregationRule"},
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
    },
    "io.k8s.api.rbac.v1.ClusterRoleBinding": {
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        "roleRef": {"type": "io.k8s.api.rbac.v1.RoleRef"},
        "subjects": {"type": "io.k8s.api.rbac.v1.Subject"},
    },
    "io.k8s.api.rbac.v1.Role": {
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
    },
    "io.k8s.api.rbac.v1.RoleBinding": {
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        "roleRef": {"type": "io.k8s.api.rbac.v1.RoleRef"},
        "subjects": {"type": "io.k8s.api.rbac.v1.Subject"},
    },
    "io.k8s.api.rbac.v1.RoleRef": {
        ATOMIC: True,
    },
    "io.k8s.api.rbac.v1.Subject": {
        ATOMIC: True,
    },
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition": {
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        "spec": {"type": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionSpec"},
        "status": {"type": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionStatus"},
    },
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionSpec": {
        "versions": {"type": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionVersion"},
    },
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionStatus": {
        "conditions": {"listMapKeys": ["type"], "listType": "map"},
    },
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionVersion": {
        "schema": {"type": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceValidation"},
    },
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceValidation": {
        "openAPIV3Schema": {"type": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps"},
    },
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps": {
        "allOf": {"type": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps"},
        "anyOf": {"type": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps"},
        "definitions": {"type": "map[io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps]"},
        "not": {"type": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps"},
        "oneOf": {"type": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps"},
        "patternProperties": {"type": "map[io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps]"},
        "properties": {"type": "map[io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps]"},
        "x-kubernetes-validations": {
            "listMapKeys": ["rule"],
            "listType": "map",
            "patchMergeKey": "rule",
            "patchStrategy": "merge",
        },
    },
    "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector": {
        ATOMIC: True,
    },
    "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta": {
        "finalizers": {"listType": "set", "patchStrategy": "merge"},
        "ownerReferences": {
            "listMapKeys": ["uid"],
            "listType": "map",
            "patchMergeKey": "uid",
            "patchStrategy": "merge",
            "type": "io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference",
        },
    },
    "io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference": {
        ATOMIC: True,
    },
}


_NO_METADATA: dict = {}


def root_type(api_version: str, kind: str) -> str | None:
    """The type name of a served built-in kind, or None for kinds without known metadata."""
    return ROOT_TYPES.get((api_version, kind))


_MAP_VALUES: dict[str, dict] = {}


def field(type_name: str | None, name: str) -> dict:
    """The metadata of field `name` of `type_name` (empty when the field has none). Every key
    of a `map[<type>]` holds a value of that type."""
    if type_name is None:
        return _NO_METADATA
    if type_name.startswith("map["):
        if type_name not in _MAP_VALUES:
            _MAP_VALUES[type_name] = {"type": type_name[4:-1]}
        return _MAP_VALUES[type_name]
    return TYPES.get(type_name, _NO_METADATA).get(name, _NO_METADATA)


def is_atomic(type_name: str | None) -> bool:
    """True when values of this type are replaced and owned as a whole."""
    return type_name is not None and TYPES.get(type_name, _NO_METADATA).get(ATOMIC, False)
