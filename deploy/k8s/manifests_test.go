// Package k8s_test holds the Kubernetes manifests to the API types and to the gateway: every
// file decodes strictly (a misspelt field fails), the Deployment has the probes, limits and
// security settings the README promises, and the ConfigMap's Caddyfile adapts.
package k8s_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/saasgate/saasgate/internal/testenv"
)

type manifests struct {
	deploy  appsv1.Deployment
	svc     corev1.Service
	hpa     autoscalingv2.HorizontalPodAutoscaler
	pdb     policyv1.PodDisruptionBudget
	cm      corev1.ConfigMap
	secret  corev1.Secret
	decoded map[string]bool
}

// decode reads one manifest into the API type its apiVersion and kind name, strictly.
func (m *manifests) decode(raw []byte) error {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(raw, &tm); err != nil {
		return err
	}
	targets := map[string]any{
		"apps/v1/Deployment":                     &m.deploy,
		"v1/Service":                             &m.svc,
		"autoscaling/v2/HorizontalPodAutoscaler": &m.hpa,
		"policy/v1/PodDisruptionBudget":          &m.pdb,
		"v1/ConfigMap":                           &m.cm,
		"v1/Secret":                              &m.secret,
	}
	key := tm.APIVersion + "/" + tm.Kind
	into, ok := targets[key]
	if !ok {
		return fmt.Errorf("unexpected kind %q", key)
	}
	if m.decoded[key] {
		return fmt.Errorf("a second %s", key)
	}
	m.decoded[key] = true
	return yaml.UnmarshalStrict(raw, into)
}

func load(t *testing.T) *manifests {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	m := &manifests{decoded: map[string]bool{}}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.decode(raw); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
	if len(m.decoded) != 6 {
		t.Fatalf("decoded %v, want a Deployment, Service, HPA, PDB, ConfigMap and Secret", m.decoded)
	}
	return m
}

func TestManifests_StrictDecodingRejectsAMisspeltField(t *testing.T) {
	raw, err := os.ReadFile("deployment.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m := &manifests{decoded: map[string]bool{}}
	bad := strings.Replace(string(raw), "readinessProbe:", "readinesProbe:", 1)
	if err := m.decode([]byte(bad)); err == nil || !strings.Contains(err.Error(), "readinesProbe") {
		t.Fatalf("decoding a misspelt readinessProbe = %v, want an error naming it", err)
	}
}

func TestManifests_DeploymentIsProbedLimitedAndLockedDown(t *testing.T) {
	m := load(t)
	pod := m.deploy.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	for name, p := range map[string]*corev1.Probe{"/readyz": c.ReadinessProbe, "/healthz": c.LivenessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != name {
			t.Errorf("probe on %s missing: %+v", name, p)
			continue
		}
		if !slices.ContainsFunc(p.HTTPGet.HTTPHeaders, func(h corev1.HTTPHeader) bool {
			return h.Name == "Host" && strings.Contains(m.cm.Data["Caddyfile"], "http://"+h.Value+":8080 {\n\tsaas_api")
		}) {
			t.Errorf("probe on %s must send the Host of the saas_api site", name)
		}
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if c.Resources.Requests.Name(r, "").IsZero() || c.Resources.Limits.Name(r, "").IsZero() {
			t.Errorf("%s request or limit missing", r)
		}
	}
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Error("the root filesystem must be read-only")
	}
	nonRoot := (sc != nil && sc.RunAsNonRoot != nil && *sc.RunAsNonRoot) ||
		(pod.SecurityContext != nil && pod.SecurityContext.RunAsNonRoot != nil && *pod.SecurityContext.RunAsNonRoot)
	if !nonRoot {
		t.Error("runAsNonRoot is not set")
	}
	emptyDirs := map[string]bool{}
	for _, v := range pod.Volumes {
		if v.EmptyDir != nil {
			emptyDirs[v.Name] = true
		}
	}
	for _, dir := range []string{"/data", "/tmp"} {
		if !slices.ContainsFunc(c.VolumeMounts, func(vm corev1.VolumeMount) bool {
			return vm.MountPath == dir && emptyDirs[vm.Name] && !vm.ReadOnly
		}) {
			t.Errorf("%s is not a writable emptyDir", dir)
		}
	}
	if ru := m.deploy.Spec.Strategy.RollingUpdate; ru == nil || ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 0 {
		t.Error("a rollout must not take a pod down before its replacement is ready (maxUnavailable 0)")
	}
}

// Every env value comes from the ConfigMap or Secret by a key that exists, and the secrets are
// the Secret's, not the ConfigMap's.
func TestManifests_EnvReferencesResolve(t *testing.T) {
	m := load(t)
	c := m.deploy.Spec.Template.Spec.Containers[0]
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
		case e.ValueFrom.ConfigMapKeyRef != nil:
			ref := e.ValueFrom.ConfigMapKeyRef
			if _, ok := m.cm.Data[ref.Key]; ref.Name != m.cm.Name || !ok {
				t.Errorf("%s: ConfigMap %s has no key %s", e.Name, ref.Name, ref.Key)
			}
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			if _, ok := m.secret.StringData[ref.Key]; ref.Name != m.secret.Name || !ok {
				t.Errorf("%s: Secret %s has no key %s", e.Name, ref.Name, ref.Key)
			}
		}
	}
	for _, name := range []string{"JWT_SECRET", "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET"} {
		if !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool {
			return e.Name == name && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil
		}) {
			t.Errorf("%s is not read from the Secret", name)
		}
		if !strings.Contains(m.cm.Data["Caddyfile"], "{env."+name+"}") {
			t.Errorf("the Caddyfile does not read {env.%s}", name)
		}
	}
}

func TestManifests_ServiceHPAAndPDBSelectThePods(t *testing.T) {
	m := load(t)
	labels := m.deploy.Spec.Template.Labels
	matches := func(sel map[string]string) bool {
		for k, v := range sel {
			if labels[k] != v {
				return false
			}
		}
		return len(sel) > 0
	}
	if !matches(m.deploy.Spec.Selector.MatchLabels) || !matches(m.svc.Spec.Selector) || m.pdb.Spec.Selector == nil ||
		!matches(m.pdb.Spec.Selector.MatchLabels) {
		t.Error("the Deployment, Service and PDB selectors must match the pod labels")
	}
	port := m.svc.Spec.Ports[0].TargetPort.String()
	if !slices.ContainsFunc(m.deploy.Spec.Template.Spec.Containers[0].Ports, func(p corev1.ContainerPort) bool { return p.Name == port }) {
		t.Errorf("the Service targets port %q, which the container does not name", port)
	}
	ref := m.hpa.Spec.ScaleTargetRef
	if ref.Kind != "Deployment" || ref.Name != m.deploy.Name {
		t.Errorf("the HPA scales %s/%s", ref.Kind, ref.Name)
	}
	if !slices.ContainsFunc(m.hpa.Spec.Metrics, func(ms autoscalingv2.MetricSpec) bool {
		return ms.Resource != nil && ms.Resource.Name == corev1.ResourceCPU
	}) {
		t.Error("the HPA does not scale on CPU")
	}
	if min := m.hpa.Spec.MinReplicas; min == nil || m.pdb.Spec.MinAvailable == nil || m.pdb.Spec.MinAvailable.IntValue() >= int(*min) {
		t.Error("the PDB's minAvailable must be below the HPA's minReplicas, or no node could ever drain")
	}
}

// The ConfigMap's Caddyfile adapts with the built gateway, the env set as the Deployment sets
// it; the secrets stay placeholders in the JSON (resolved only when the config loads).
func TestManifests_CaddyfileAdapts(t *testing.T) {
	m := load(t)
	file := filepath.Join(t.TempDir(), "Caddyfile")
	if err := os.WriteFile(file, []byte(m.cm.Data["Caddyfile"]), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testenv.SaasgateBinary(t), "adapt", "--config", file, "--validate")
	cmd.Env = os.Environ()
	for _, e := range m.deploy.Spec.Template.Spec.Containers[0].Env {
		v := e.Value
		switch {
		case e.ValueFrom == nil:
		case e.ValueFrom.ConfigMapKeyRef != nil:
			v = m.cm.Data[e.ValueFrom.ConfigMapKeyRef.Key]
		case e.ValueFrom.SecretKeyRef != nil:
			v = m.secret.StringData[e.ValueFrom.SecretKeyRef.Key]
		}
		cmd.Env = append(cmd.Env, e.Name+"="+v)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("adapt: %v\n%s", err, out)
	}
	if strings.Contains(string(out), m.secret.StringData["jwt_secret"]) || !strings.Contains(string(out), "{env.JWT_SECRET}") {
		t.Errorf("the adapted config must hold {env.JWT_SECRET}, not the secret:\n%s", out)
	}
}
