// Original file: proto/chanlayer/v1/channel_layer.proto


/**
 * CapacityRule sets the capacity of the channels whose name matches a pattern, as Django
 * Channels' `channel_capacity` setting does. The first matching rule wins.
 */
export interface CapacityRule {
  /**
   * A shell-style glob matched against the whole name, as Python's `fnmatch`:
   * `*` matches anything, `?` one character, `[seq]` and `[!seq]` a character set.
   */
  'glob'?: (string);
  /**
   * A regular expression matched at the start of the name, as Python's `re.match`.
   */
  'regex'?: (string);
  /**
   * The capacity of a matching channel. Zero means the default of 100.
   */
  'capacity'?: (number);
  /**
   * The pattern a channel name must match.
   */
  'pattern'?: "glob"|"regex";
}

/**
 * CapacityRule sets the capacity of the channels whose name matches a pattern, as Django
 * Channels' `channel_capacity` setting does. The first matching rule wins.
 */
export interface CapacityRule__Output {
  /**
   * A shell-style glob matched against the whole name, as Python's `fnmatch`:
   * `*` matches anything, `?` one character, `[seq]` and `[!seq]` a character set.
   */
  'glob'?: (string);
  /**
   * A regular expression matched at the start of the name, as Python's `re.match`.
   */
  'regex'?: (string);
  /**
   * The capacity of a matching channel. Zero means the default of 100.
   */
  'capacity': (number);
  /**
   * The pattern a channel name must match.
   */
  'pattern'?: "glob"|"regex";
}
