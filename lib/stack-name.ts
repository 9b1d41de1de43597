/**
 * `CivicEtl-<project>`: the stack of a project. Project names may hold `_`, which CloudFormation
 * stack names do not accept, so it becomes `-`.
 */
export function stackNameFor(project: string): string {
  return `CivicEtl-${project.replace(/_/g, '-')}`;
}
