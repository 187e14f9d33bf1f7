import { Body, Controller, Delete, Get, HttpCode, Param, Put, Res, UseGuards } from '@nestjs/common';
import { ApiOperation, ApiResponse, ApiSecurity, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import type { Principal } from '@latchkey/authz';
import { ProfileAdminService } from '@latchkey/keys';
import { Caller, CallerGuard, RequestId } from '../auth/caller.guard';
import { ApiErrors } from '../http/api-errors';
import { ProfileDto, ProfileListResponse, ProfileResponse } from './dto';
import { presentProfile } from './presenters';

@ApiTags('profiles')
@ApiSecurity('vaultToken')
@ApiSecurity('managementKey')
@ApiErrors(401, 403)
@UseGuards(CallerGuard)
@Controller('v1/profiles')
export class ProfilesController {
  constructor(private readonly profiles: ProfileAdminService) {}

  @Get()
  @ApiOperation({ summary: 'List profiles', description: 'Needs read on latchkey/profiles/*.' })
  @ApiResponse({ status: 200, type: ProfileListResponse })
  async list(@Caller() caller: Principal): Promise<ProfileListResponse> {
    return { items: (await this.profiles.list(caller)).map(presentProfile) };
  }

  @Put(':name')
  @ApiOperation({
    summary: 'Create or replace a profile',
    description: 'Writes the Vault token role latchkey-<name> (orphan service tokens) and latchkey settings. Needs create (new) or update on latchkey/profiles/<name>.',
  })
  @ApiResponse({ status: 201, type: ProfileResponse, description: 'created' })
  @ApiResponse({ status: 200, type: ProfileResponse, description: 'replaced' })
  @ApiErrors(404)
  async put(
    @Caller() caller: Principal,
    @Param('name') name: string,
    @Body() body: ProfileDto,
    @RequestId() requestId: string,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<ProfileResponse> {
    const { profile, created, warnings } = await this.profiles.put(caller, name, body, requestId);
    void reply.status(created ? 201 : 200);
    return { ...presentProfile(profile), ...(warnings.length ? { warnings } : {}) };
  }

  @Get(':name')
  @ApiOperation({ summary: 'Read a profile', description: 'Needs read on latchkey/profiles/<name>.' })
  @ApiResponse({ status: 200, type: ProfileResponse })
  @ApiErrors(404)
  async get(@Caller() caller: Principal, @Param('name') name: string): Promise<ProfileResponse> {
    return presentProfile(await this.profiles.get(caller, name));
  }

  @Delete(':name')
  @HttpCode(204)
  @ApiOperation({ summary: 'Delete a profile', description: 'Deletes the token role and its derived CIDR roles. Existing keys keep working until revoked or expired.' })
  @ApiResponse({ status: 204, description: 'deleted' })
  @ApiErrors(404)
  async delete(@Caller() caller: Principal, @Param('name') name: string, @RequestId() requestId: string): Promise<void> {
    await this.profiles.delete(caller, name, requestId);
  }
}
