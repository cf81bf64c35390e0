/**
 * Large upstream bodies, for the tests that catch non-linear costs and for the bench (W9):
 * one shaped like AWS's ip-ranges.json, and one long string value.
 */

/**
 * A document shaped like https://ip-ranges.amazonaws.com/ip-ranges.json (pretty-printed, two
 * spaces a level, as AWS serves it) of about `bytes` bytes.
 */
export function ipRanges(bytes: number): string {
  const regions = ["us-east-1", "eu-west-1", "ap-northeast-2", "sa-east-1", "GLOBAL"];
  const services = ["AMAZON", "EC2", "S3", "CLOUDFRONT", "ROUTE53"];
  const prefixes: object[] = [];
  const ipv6: object[] = [];
  // An entry is about 160 bytes as written below.
  for (let i = 0; i < bytes / 160; i++) {
    const region = regions[i % regions.length]!;
    const service = services[(i * 7) % services.length]!;
    if (i % 3 === 2) ipv6.push({ ipv6_prefix: `2600:1f${(i % 256).toString(16).padStart(2, "0")}:${(i >> 8).toString(16)}::/56`, region, service, network_border_group: region });
    else prefixes.push({ ip_prefix: `${3 + ((i >> 16) & 63)}.${(i >> 8) & 255}.${i & 255}.0/24`, region, service, network_border_group: region });
  }
  return JSON.stringify({ syncToken: "1700000000", createDate: "2024-01-01-00-00-00", prefixes, ipv6_prefixes: ipv6 }, null, 2);
}

/** A JSON string of exactly `bytes` bytes (quotes included): printable ASCII, as a base64 blob or a PEM is. */
export function longString(bytes: number): string {
  const line = "MIIDdzCCAl+gAwIBAgIEAgAAuTANBgkqhkiG9w0BAQUFADBaMQswCQYDVQQGEwJJ+/";
  return `"${line.repeat(Math.ceil(bytes / line.length)).slice(0, bytes - 2)}"`;
}
