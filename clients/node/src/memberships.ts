/**
 * The group memberships of a layer's own specific channels, kept on the client so that they
 * can be restored when the server lost them.
 *
 * A session's memberships live on the server as long as the session does. When a stream
 * reopens and the server did not know the session any more (it restarted, or the lease grace
 * ran out while the client was away), they are gone: the session writes a `groupAdd` for each
 * unexpired one remembered here before any other operation, so the layer's channels keep
 * getting their groups' messages without the application adding them again.
 *
 * Only channels of the layer's own client prefix are remembered: another process's channel is
 * that process's to restore.
 *
 * @module
 * @internal
 */

/** One membership to restore: the group, the channel, and the seconds it has left. */
export interface MembershipToRestore {
  group: string;
  channel: string;
  groupExpirySeconds: number;
}

/** The memberships of a layer's own specific channels, with the time each expires. */
export class Memberships {
  /** `group` then `channel` -> the `Date.now()` at which the membership expires. */
  private readonly deadlines = new Map<string, Map<string, number>>();

  /** Records (or refreshes) that `channel` is in `group` for `expirySeconds`. */
  remember(group: string, channel: string, expirySeconds: number): void {
    let channels = this.deadlines.get(group);
    if (channels === undefined) {
      channels = new Map();
      this.deadlines.set(group, channels);
    }
    channels.set(channel, Date.now() + expirySeconds * 1000);
  }

  /** Forgets a membership (`groupDiscard`). */
  forget(group: string, channel: string): void {
    const channels = this.deadlines.get(group);
    if (channels === undefined) return;
    channels.delete(channel);
    if (channels.size === 0) this.deadlines.delete(group);
  }

  /** Forgets every membership (the namespace was flushed, or the session released). */
  clear(): void {
    this.deadlines.clear();
  }

  /** How many memberships are remembered (expired ones included until the next restore). */
  get size(): number {
    let size = 0;
    for (const channels of this.deadlines.values()) size += channels.size;
    return size;
  }

  /** The unexpired memberships, with the whole seconds each has left (at least 1); drops the rest. */
  toRestore(): MembershipToRestore[] {
    const now = Date.now();
    const restore: MembershipToRestore[] = [];
    for (const [group, channels] of [...this.deadlines]) {
      for (const [channel, deadline] of [...channels]) {
        const remainingMs = deadline - now;
        if (remainingMs <= 0) {
          channels.delete(channel);
        } else {
          restore.push({ group, channel, groupExpirySeconds: Math.max(1, Math.floor(remainingMs / 1000)) });
        }
      }
      if (channels.size === 0) this.deadlines.delete(group);
    }
    return restore;
  }
}
