/**
 * The task schemas Glance (Zed) serves at /v2/schemas/task and /v2/schemas/tasks, as recorded
 * in docs/reference/glance-zed/.
 */
import { listSchema } from "./list-schema.js";

export const TASK_SCHEMA = {
  name: "task",
  properties: {
    id: {
      description: "An identifier for the task",
      pattern: "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$",
      type: "string",
    },
    type: {
      description: "The type of task represented by this content",
      enum: ["import", "api_image_import"],
      type: "string",
    },
    status: {
      description: "The current status of this task",
      enum: ["pending", "processing", "success", "failure"],
      type: "string",
    },
    input: {
      description: "The parameters required by task, JSON blob",
      type: ["null", "object"],
    },
    result: {
      description: "The result of current task, JSON blob",
      type: ["null", "object"],
    },
    owner: {
      description: "An identifier for the owner of this task",
      type: "string",
    },
    message: {
      description: "Human-readable informative message only included when appropriate (usually on failure)",
      type: "string",
    },
    image_id: {
      description: "Image associated with the task",
      type: "string",
    },
    request_id: {
      description: "Human-readable informative request-id",
      type: "string",
    },
    user_id: {
      description: "User associated with the task",
      type: "string",
    },
    expires_at: {
      description: "Datetime when this resource would be subject to removal",
      type: ["null", "string"],
    },
    created_at: {
      description: "Datetime when this resource was created",
      type: "string",
    },
    updated_at: {
      description: "Datetime when this resource was updated",
      type: "string",
    },
    self: {
      readOnly: true,
      type: "string",
    },
    schema: {
      readOnly: true,
      type: "string",
    },
  },
};

/** Glance's task list leaves out the fields GET /v2/tasks does not show (input, result, message). */
const { input: _input, result: _result, message: _message, ...listed } = TASK_SCHEMA.properties;

export const TASKS_SCHEMA = listSchema("tasks", { name: "task", properties: listed });
