package account_test

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"testing"

	"github.com/saasgate/saasgate/control/account"
	"github.com/saasgate/saasgate/control/identity"
	"github.com/saasgate/saasgate/control/notify"
)

// memberEvents records what accounts publish. It stands for nothing external (the outbox is
// notify's): only the calls matter here.
type memberEvents struct {
	mu     sync.Mutex
	events []notify.Event
	fail   bool
}

func (p *memberEvents) Publish(_ context.Context, ev notify.Event) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail {
		return errors.New("outbox down")
	}
	p.events = append(p.events, ev)
	return nil
}

// The owner's signup that creates a tenant and an invited member's signup each publish
// member.joined; a role change publishes member.role_changed, and setting the same role
// again publishes nothing. Ids name the change: the user, and the roles revision.
func TestMemberEvents_JoinAndRoleChange(t *testing.T) {
	f := newManager(t)
	pub := &memberEvents{}
	f.m.Notify = pub
	ctx := context.Background()
	owner, err := f.m.Signup(ctx, anon, account.SignupRequest{Email: "owner@ev.test", Password: "password-1", Tenant: "ev-corp"})
	if err != nil {
		t.Fatal(err)
	}
	op := identity.Principal{UserID: owner.UserID, TenantID: "ev-corp", Role: identity.RoleOwner}
	inv, err := f.m.Invite(ctx, op, anon, "ev-corp", "member@ev.test", identity.RoleUser)
	if err != nil {
		t.Fatal(err)
	}
	member, err := f.m.Signup(ctx, anon, account.SignupRequest{Email: "member@ev.test", Password: "password-2", Tenant: "ev-corp", InviteToken: inv.Token})
	if err != nil {
		t.Fatal(err)
	}
	// A refused signup (the email taken) publishes nothing.
	if _, err := f.m.Signup(ctx, anon, account.SignupRequest{Email: "owner@ev.test", Password: "password-1", Tenant: "ev-corp"}); err == nil {
		t.Fatal("a second signup into the tenant without an invitation succeeded")
	}
	for range 2 {
		if _, err := f.m.ChangeRole(ctx, op, anon, "ev-corp", member.UserID, identity.RoleOwner); err != nil {
			t.Fatal(err)
		}
	}

	want := []struct {
		typ  string
		id   string
		data map[string]any
	}{
		{notify.EventMemberJoined, notify.EventID("ev-corp", owner.UserID, notify.EventMemberJoined),
			map[string]any{"tenant_id": "ev-corp", "user_id": owner.UserID, "email": "owner@ev.test", "role": "owner"}},
		{notify.EventMemberJoined, notify.EventID("ev-corp", member.UserID, notify.EventMemberJoined),
			map[string]any{"tenant_id": "ev-corp", "user_id": member.UserID, "email": "member@ev.test", "role": "user"}},
		{notify.EventMemberRoleChanged, notify.EventID("ev-corp", member.UserID, "1", notify.EventMemberRoleChanged),
			map[string]any{"tenant_id": "ev-corp", "user_id": member.UserID, "email": "member@ev.test", "role": "owner", "previous_role": "user"}},
	}
	if len(pub.events) != len(want) {
		t.Fatalf("published %+v, want %d events", pub.events, len(want))
	}
	for i, w := range want {
		ev := pub.events[i]
		if ev.Type != w.typ || ev.ID != w.id || ev.TenantID != "ev-corp" || !ev.Time.Equal(f.now) || !reflect.DeepEqual(ev.Data, w.data) {
			t.Errorf("event %d: %+v\n want %s %s %v", i, ev, w.typ, w.id, w.data)
		}
	}

	// The change is stored whatever the outbox does: a failed publish does not fail it.
	pub.fail = true
	if _, err := f.m.ChangeRole(ctx, op, anon, "ev-corp", member.UserID, identity.RoleUser); err != nil {
		t.Fatalf("role change with the outbox down: %v", err)
	}
}
