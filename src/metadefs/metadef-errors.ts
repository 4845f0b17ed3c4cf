/**
 * The metadata definitions' refusals, in Glance's words (recorded from Glance Zed: clients and
 * tempest show them as they are).
 */
import { ConflictError, ForbiddenError, NotFoundError } from "../errors.js";

function notFound(message: string): NotFoundError {
  const e = new NotFoundError("metadata definition");
  e.message = message;
  return e;
}

export const missing = {
  /** GET of the namespace itself, and a list's marker. */
  namespace: (name: string) => notFound(`Metadata definition namespace=${name} was not found.`),
  /** Everything under a namespace, and its update and delete. */
  parent: (name: string) => notFound(`Namespace ${name} not found`),
  object: (name: string) => notFound(`Could not find metadata object ${name}`),
  property: (name: string) => notFound(`Could not find property ${name}`),
  tag: (name: string) => notFound(`Could not find metadata tag ${name}`),
  resourceType: (name: string) =>
    notFound(`The metadata definition resource-type with name=${name}, was not found.`),
  association: (type: string, ns: string) =>
    notFound(
      `The metadata definition resource-type association of resource-type=${type} to namespace=${ns}, was not found.`,
    ),
  prefix: (name: string, prefix: string) =>
    notFound(
      `Property ${name} does not start with the expected resource type association prefix of '${prefix}'.`,
    ),
};

export const duplicate = {
  namespace: (name: string) => new ConflictError(`The metadata definition namespace=${name} already exists.`),
  renamedNamespace: (name: string) =>
    new ConflictError(
      `Invalid update. It would result in a duplicate metadata definition namespace with the same name of ${name}`,
    ),
  object: (name: string, ns: string) =>
    new ConflictError(`A metadata definition object with name=${name} already exists in namespace=${ns}.`),
  renamedObject: (name: string, ns: string) =>
    new ConflictError(
      `Invalid update. It would result in a duplicate metadata definition object with the same name=${name} in namespace=${ns}.`,
    ),
  property: (name: string, ns: string) =>
    new ConflictError(`A metadata definition property with name=${name} already exists in namespace=${ns}.`),
  renamedProperty: (name: string, ns: string) =>
    new ConflictError(
      `Invalid update. It would result in a duplicate metadata definition property with the same name=${name} in namespace=${ns}.`,
    ),
  tag: (name: string, ns: string) =>
    new ConflictError(
      `A metadata tag with name=${name} already exists in namespace=${ns}. (Please note that metadata tag names are case insensitive).`,
    ),
  association: (type: string, ns: string) =>
    new ConflictError(
      `The metadata definition resource-type association of resource-type=${type} to namespace=${ns} already exists.`,
    ),
};

/** Deleting anything inside a protected namespace (Glance's words name what was asked). */
export function protectedFrom(kind: string, name: string): ForbiddenError {
  return new ForbiddenError(`Metadata definition ${kind} ${name} is protected and cannot be deleted.`);
}
