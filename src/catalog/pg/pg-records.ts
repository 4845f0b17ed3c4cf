/** The image service's records, for reading, on a pool or a unit of work's client. */
import type { RecordsReader } from "../catalog.js";
import { namespaces, resourceTypes } from "./metadef-records.js";
import * as records from "./records.js";
import type { Sql } from "./sql.js";

export function recordsOn(q: Sql): RecordsReader {
  return {
    getImage: (id) => records.getImage(q, id),
    getImages: (ids) => records.getImages(q, ids),
    scanImages: (key, dir, from) => records.scanImages(q, key, dir, from),
    ownerUsage: (owner) => records.ownerUsage(q, owner),
    getMember: (imageId, project) => records.getMember(q, imageId, project),
    listMembers: (imageId) => records.listMembers(q, imageId),
    countMembers: (imageId) => records.countMembers(q, imageId),
    getTask: (id) => records.getTask(q, id),
    listTasks: () => records.listTasks(q),
    tasksOfImage: (imageId) => records.tasksOfImage(q, imageId),
    getNamespace: (name) => namespaces.get(q, name),
    listNamespaces: () => namespaces.list(q),
    listResourceTypes: () => resourceTypes.list(q),
  };
}
